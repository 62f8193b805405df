//! The project's labs, in one place: `cargo xtask lab|labs|check`, the handouts and the tests
//! all read this list, so a new lab is added here once.

use k8s_labs_harness::Lab;

/// One lab of the project: the tutorial run and the check of a student's own work.
pub struct RegisteredLab {
    /// The lab's name on the command line, in namespaces and in `handouts/`.
    pub name: &'static str,
    /// The lab as the tutorial runs it.
    pub lab: fn() -> Lab,
    /// The check of what a student built by hand (`cargo xtask check <name>`).
    pub check: fn() -> Lab,
}

/// Every lab, in the tutorial's order.
pub const LABS: [RegisteredLab; 3] = [
    RegisteredLab {
        name: lab_statefulset_dns::NAME,
        lab: lab_statefulset_dns::lab,
        check: lab_statefulset_dns::check::check,
    },
    RegisteredLab {
        name: lab_replicaset_scale::NAME,
        lab: lab_replicaset_scale::lab,
        check: lab_replicaset_scale::check::check,
    },
    RegisteredLab {
        name: lab_pvc_templates::NAME,
        lab: lab_pvc_templates::lab,
        check: lab_pvc_templates::check::check,
    },
];

/// The names of every lab, in order.
pub fn lab_names() -> Vec<&'static str> {
    LABS.iter().map(|lab| lab.name).collect()
}

/// The registered lab called `name`.
pub fn find(name: &str) -> Option<&'static RegisteredLab> {
    LABS.iter().find(|lab| lab.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entry_builds_the_lab_and_check_it_is_named_for() {
        for entry in &LABS {
            assert_eq!((entry.lab)().name(), entry.name);
            assert_eq!(
                (entry.check)().name(),
                entry.name,
                "check of {}",
                entry.name
            );
        }
        assert_eq!(
            lab_names(),
            ["statefulset-dns", "replicaset-scale", "pvc-templates"]
        );
        assert!(find("pvc-templates").is_some() && find("nope").is_none());
    }
}
