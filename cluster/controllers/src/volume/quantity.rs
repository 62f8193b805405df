//! Storage sizes from resource quantities, to compare a volume's capacity with a claim's
//! request.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The quantity in bytes (rounded up), or `None` if it is not a valid quantity.
pub(crate) fn bytes(quantity: &Quantity) -> Option<u128> {
    k8s_labs_quantity::Quantity::parse(&quantity.0).map(k8s_labs_quantity::Quantity::ceil)
}
