//! Values one step observes for a later step of the same run to check against (the pods of
//! the broken image, the volumes bound to each claim). A [`ValueKey`] names a value and its
//! type, so a lab cannot read back something other than what it stored; reading a value no
//! earlier step stored is an error that names it, never a silent default that lets a claim
//! pass with nothing checked.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Mutex, PoisonError};

use anyhow::{Result, anyhow};

/// The name and type of a value kept between the steps of a lab run. Declare one `const` per
/// value beside the steps that record and check it:
///
/// ```
/// use k8s_labs_harness::ValueKey;
///
/// const BROKEN_PODS: ValueKey<Vec<String>> = ValueKey::new("the pods of the broken image");
/// ```
pub struct ValueKey<T> {
    name: &'static str,
    value: PhantomData<fn() -> T>,
}

impl<T> ValueKey<T> {
    /// A key; `name` says what the value is, in words that fit "no earlier step recorded …".
    pub const fn new(name: &'static str) -> ValueKey<T> {
        ValueKey {
            name,
            value: PhantomData,
        }
    }

    /// What the value is.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The values recorded so far in one lab run, by key name.
#[derive(Default)]
pub(crate) struct KeptValues {
    values: Mutex<HashMap<&'static str, Box<dyn Any + Send + Sync>>>,
}

impl KeptValues {
    /// Keeps `value` under `key`, replacing what an earlier step kept there.
    pub(crate) fn record<T: Clone + Send + Sync + 'static>(&self, key: &ValueKey<T>, value: T) {
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.name, Box::new(value));
    }

    /// The value kept under `key`; an error naming it when no step kept one (or, for two keys
    /// that share a name, one of another type).
    pub(crate) fn get<T: Clone + Send + Sync + 'static>(&self, key: &ValueKey<T>) -> Result<T> {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let value = values.get(key.name).ok_or_else(|| {
            anyhow!(
                "no earlier step of this run recorded {}, which this step checks against",
                key.name
            )
        })?;
        value.downcast_ref::<T>().cloned().ok_or_else(|| {
            anyhow!(
                "{} was recorded as another type than this step reads (two keys share the name)",
                key.name
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PODS: ValueKey<Vec<String>> = ValueKey::new("the pods of the broken image");

    #[test]
    fn a_recorded_value_reads_back_and_a_later_record_replaces_it() {
        let state = KeptValues::default();
        state.record(&PODS, vec!["a".to_string()]);
        assert_eq!(state.get(&PODS).unwrap(), ["a"]);
        state.record(&PODS, vec!["b".to_string(), "c".to_string()]);
        assert_eq!(state.get(&PODS).unwrap(), ["b", "c"]);
    }

    #[test]
    fn reading_what_no_step_recorded_names_it() {
        let error = KeptValues::default().get(&PODS).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no earlier step of this run recorded the pods of the broken image, which this step \
             checks against"
        );
    }

    #[test]
    fn a_name_recorded_with_another_type_is_an_error() {
        let state = KeptValues::default();
        state.record(&ValueKey::<u32>::new("the pods of the broken image"), 3);
        let error = state.get(&PODS).unwrap_err();
        assert!(error.to_string().contains("another type"), "{error}");
    }
}
