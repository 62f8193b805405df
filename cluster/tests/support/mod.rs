pub mod kubectl;
