//! SPDY/3.1, the stream multiplexing `kubectl port-forward` speaks to the kubelet (directly
//! over an HTTP/1.1 upgrade, or tunneled in a WebSocket by kubectl 1.31 and newer): the
//! frames ([`frame`]) and the server side of a session ([`session`]).

pub mod frame;
pub mod session;
