//! nslookup output as data: both formats a lab meets (busybox 1.28 and bind9), so claims
//! compare answers rather than text that differs between the two.

use std::net::IpAddr;

/// One answer of an nslookup run: the name that was resolved and the addresses given for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NslookupAnswer {
    /// The name as printed after `Name:` (busybox 1.28 prints the query, bind9 the FQDN).
    pub name: String,
    /// The addresses listed for that name, in output order.
    pub addresses: Vec<IpAddr>,
}

impl NslookupAnswer {
    /// Whether this answer is for `query`: the name is the query itself or the query extended
    /// by search domains (`web-0.nginx` matches `web-0.nginx.default.svc.cluster.local`).
    pub fn answers(&self, query: &str) -> bool {
        let name = self.name.trim_end_matches('.');
        let query = query.trim_end_matches('.');
        name == query
            || name
                .strip_prefix(query)
                .is_some_and(|rest| rest.starts_with('.'))
    }
}

/// Parses the answers out of nslookup output, in both formats a lab meets:
///
/// * busybox 1.28: `Name:      web-0.nginx` then `Address 1: 10.244.1.6 [host name]`;
/// * bind9: `Name:\tweb-1.nginx.default.svc.cluster.local` then `Address: 10.244.249.4`.
///
/// The `Server:` block that both print first (bind9's `Address: 10.96.0.10#53`, busybox's
/// `Address 1: 10.0.0.10 kube-dns...`) names the DNS server and is not an answer; it is
/// skipped. Several runs concatenated (one shell running two nslookups) give all their
/// answers in order.
pub fn parse_nslookup(output: &str) -> Vec<NslookupAnswer> {
    let mut answers: Vec<NslookupAnswer> = Vec::new();
    let mut in_answer = false;
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with("Server:") {
            in_answer = false;
        } else if let Some(name) = line.strip_prefix("Name:") {
            in_answer = true;
            let name = name.trim().to_string();
            // bind9 prints one Name/Address pair per address of the same name.
            if answers.last().is_none_or(|last| last.name != name) {
                answers.push(NslookupAnswer {
                    name,
                    addresses: Vec::new(),
                });
            }
        } else if in_answer && let Some(rest) = line.strip_prefix("Address") {
            // `Address: 10.244.249.4` (bind9) or `Address 1: 10.244.1.6 name` (busybox).
            let Some((_, value)) = rest.split_once(':') else {
                continue;
            };
            let Some(token) = value.split_whitespace().next() else {
                continue;
            };
            if let (Ok(address), Some(answer)) = (token.parse::<IpAddr>(), answers.last_mut()) {
                answer.addresses.push(address);
            }
        }
    }
    answers
}

/// The addresses nslookup output gives for `query` (empty when it gave none).
pub fn nslookup_addresses(output: &str, query: &str) -> Vec<IpAddr> {
    parse_nslookup(output)
        .into_iter()
        .filter(|answer| answer.answers(query))
        .flat_map(|answer| answer.addresses)
        .collect()
}

/// The first error line of nslookup output (`;; communications error to 10.96.0.10#53: timed
/// out`, `;; no servers could be reached`): one of its queries (it asks for AAAA after A) went
/// unanswered. A claim on the whole output tries again on it instead of failing on a lost
/// packet.
pub fn nslookup_error(output: &str) -> Option<&str> {
    output.lines().find(|line| line.starts_with(";;"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unanswered_query_is_an_error_line() {
        let output = "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nName:\tweb-1.nginx.default.svc.cluster.local\nAddress: 10.244.0.3\n;; communications error to 10.96.0.10#53: timed out\n;; no servers could be reached\n";
        assert_eq!(
            nslookup_error(output),
            Some(";; communications error to 10.96.0.10#53: timed out")
        );
        assert_eq!(nslookup_error(BUSYBOX_WEB_0), None);
    }

    /// The tutorial's busybox:1.28 output, verbatim.
    const BUSYBOX_WEB_0: &str = "Server:    10.0.0.10
Address 1: 10.0.0.10 kube-dns.kube-system.svc.cluster.local

Name:      web-0.nginx
Address 1: 10.244.1.6
";
    const BUSYBOX_WEB_1: &str = "nslookup web-1.nginx
Server:    10.0.0.10
Address 1: 10.0.0.10 kube-dns.kube-system.svc.cluster.local

Name:      web-1.nginx
Address 1: 10.244.2.6
";
    /// The tutorial's bind9 output (its first line glued to the prompt, as in the tutorial).
    const BIND9_WEB_1: &str = "[root@k8smaster Stateful]# nslookup web-1.nginx.default.svc.cluster.local 10.96.0.10Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

Name:\tweb-1.nginx.default.svc.cluster.local
Address: 10.244.249.4
";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_busybox_1_28_answers_and_skips_the_server_block() {
        let answers = parse_nslookup(BUSYBOX_WEB_0);
        assert_eq!(
            answers,
            vec![NslookupAnswer {
                name: "web-0.nginx".into(),
                addresses: vec![ip("10.244.1.6")]
            }]
        );
    }

    #[test]
    fn parses_busybox_address_lines_with_a_trailing_host_name() {
        let output = "Server:    10.96.0.10\nAddress 1: 10.96.0.10 kube-dns.kube-system.svc.cluster.local\n\nName:      web-0.nginx\nAddress 1: 10.244.0.2 web-0.nginx.default.svc.cluster.local\n";
        assert_eq!(
            nslookup_addresses(output, "web-0.nginx"),
            vec![ip("10.244.0.2")]
        );
    }

    #[test]
    fn parses_bind9_answer_and_ignores_server_address_with_port() {
        let answers = parse_nslookup(BIND9_WEB_1);
        assert_eq!(
            answers,
            vec![NslookupAnswer {
                name: "web-1.nginx.default.svc.cluster.local".into(),
                addresses: vec![ip("10.244.249.4")]
            }]
        );
    }

    #[test]
    fn matches_a_short_query_against_the_fqdn_bind9_prints() {
        let output = "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nName:\tweb-0.nginx.default.svc.cluster.local\nAddress: 10.244.0.2\n";
        assert_eq!(
            nslookup_addresses(output, "web-0.nginx"),
            vec![ip("10.244.0.2")]
        );
        assert!(nslookup_addresses(output, "web-0.ngin").is_empty());
        assert!(nslookup_addresses(output, "web-1.nginx").is_empty());
    }

    #[test]
    fn keeps_the_answers_of_two_runs_apart() {
        let output = format!("{BUSYBOX_WEB_0}{BUSYBOX_WEB_1}");
        assert_eq!(
            nslookup_addresses(&output, "web-0.nginx"),
            vec![ip("10.244.1.6")]
        );
        assert_eq!(
            nslookup_addresses(&output, "web-1.nginx"),
            vec![ip("10.244.2.6")]
        );
    }

    #[test]
    fn nxdomain_gives_no_answer() {
        let output = "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n** server can't find web-0.nginx: NXDOMAIN\n";
        assert!(parse_nslookup(output).is_empty());
    }

    #[test]
    fn bind9_multiple_addresses_of_one_name_are_one_answer() {
        let output = "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nName:\tnginx.default.svc.cluster.local\nAddress: 10.244.0.2\nName:\tnginx.default.svc.cluster.local\nAddress: 10.244.0.3\n";
        let answers = parse_nslookup(output);
        assert_eq!(answers.len(), 1);
        assert_eq!(
            answers[0].addresses,
            vec![ip("10.244.0.2"), ip("10.244.0.3")]
        );
    }
}
