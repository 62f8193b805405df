//! Pod Security admission, as kube-apiserver's PodSecurity admission plugin does it: the
//! `pod-security.kubernetes.io/{enforce,audit,warn}[-version]` labels of a namespace choose a
//! Pod Security Standards level (`privileged`, `baseline`, `restricted`) for each mode; pods
//! that violate the enforce level are refused, violations of the warn level come back as
//! `Warning` headers, for pods and for the pod templates of workloads.
//!
//! What differs from kube-apiserver, and why:
//! - every policy version (`latest`, `v1.N`) is evaluated with the checks of Kubernetes 1.33
//!   (the default version this server reports); the version is still echoed in messages
//!   (`"restricted:v1.30"`);
//! - the audit mode is parsed and evaluated but there is no audit log to annotate;
//! - no exemptions (usernames, runtime classes, namespaces) can be configured, which is
//!   kube-apiserver's default.

mod admission;
mod baseline;
mod checks;
mod level;
mod pod_fields;
mod restricted;
mod violation;

pub use admission::{Admission, Review};
