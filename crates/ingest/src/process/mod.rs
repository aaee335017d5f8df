//! The processors a stream applies, in order: [`validate`], [`pii`], then the configured
//! [`expr`] (filter, derive), rename and drop.

pub mod expr;
pub mod pii;
pub mod validate;
