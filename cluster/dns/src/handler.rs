//! The hickory request handler: one DNS message in, one DNS message out.
//!
//! Each query takes a snapshot of the reflector stores, so answers follow the API server's
//! watch events as soon as the reflectors apply them.

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::Record;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::Store;

use crate::cluster_view::ClusterView;
use crate::records::{Resolution, Zone, resolve};

/// Answers queries from the reflector stores of Services and EndpointSlices.
pub(crate) struct ClusterDnsHandler {
    pub zone: Zone,
    pub services: Store<Service>,
    pub endpoint_slices: Store<EndpointSlice>,
}

/// A response before encoding: flags and the three record sections.
struct Reply {
    response_code: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

impl ClusterDnsHandler {
    fn view(&self) -> ClusterView {
        ClusterView {
            services: self.services.state(),
            endpoint_slices: self.endpoint_slices.state(),
        }
    }

    fn reply(&self, request: &Request) -> Reply {
        let refused = |response_code| Reply {
            response_code,
            authoritative: false,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        };
        if request.metadata.op_code != OpCode::Query {
            return refused(ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            return refused(ResponseCode::FormErr);
        };
        let query = info.query.original();
        match resolve(&query.name, query.query_type, &self.view(), &self.zone) {
            Resolution::Found {
                answers,
                additionals,
            } => {
                let authorities = if answers.is_empty() {
                    vec![self.zone.soa()]
                } else {
                    Vec::new()
                };
                Reply {
                    response_code: ResponseCode::NoError,
                    authoritative: true,
                    answers,
                    authorities,
                    additionals,
                }
            }
            Resolution::NxDomain => Reply {
                response_code: ResponseCode::NXDomain,
                authoritative: true,
                answers: Vec::new(),
                authorities: vec![self.zone.soa()],
                additionals: Vec::new(),
            },
            // No upstream exists in this cluster. CoreDNS would forward such a name and relay
            // the upstream's NXDOMAIN; answering that directly ends a resolver's search-list
            // walk with a clean "not found" (bare names like `web-0.nginx.` never resolve).
            Resolution::NotOurs => refused(ResponseCode::NXDomain),
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for ClusterDnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let reply = self.reply(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = reply.response_code;
        metadata.authoritative = reply.authoritative;
        // CoreDNS always sets RA; resolvers such as bind's nslookup give up on a server
        // that answers without it.
        metadata.recursion_available = true;

        let response_edns = request.edns.as_ref().map(|request_edns| {
            let mut edns = Edns::new();
            edns.set_max_payload(request_edns.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = response_edns.as_ref() {
            builder.edns(edns);
        }
        let response = builder.build(
            metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            std::iter::empty(),
            reply.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::warn!(%error, "could not send a DNS response");
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: failed,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
