//! The traits through which generated code meets the user's types: the function's `Result`, its
//! error's conversion from [`BreakerError`], owned arguments kept for the fallback, the fallback's
//! output, and how an error is described in alerts. Each carries a
//! `#[diagnostic::on_unimplemented]` message, so a mistake reads as one about the attribute.

use crate::core::error::BreakerError;

/// The return type of a `#[circuit_breaker]` function.
#[diagnostic::on_unimplemented(
    message = "a `#[circuit_breaker]` function must return a `Result`, not `{Self}`",
    label = "expected `Result<_, _>`",
    note = "the breaker counts `Err` as a failure; wrap the value in `Result<_, YourError>`"
)]
pub trait BreakerResult: Sized {
    /// The success type.
    type Ok;
    /// The error type.
    type Error;
    /// The error, if this is one.
    fn err_ref(&self) -> Option<&Self::Error>;
    /// Identity, seen through the trait.
    fn from_result(r: Result<Self::Ok, Self::Error>) -> Self;
}

impl<T, E> BreakerResult for Result<T, E> {
    type Ok = T;
    type Error = E;
    #[inline]
    fn err_ref(&self) -> Option<&E> {
        self.as_ref().err()
    }
    #[inline]
    fn from_result(r: Self) -> Self {
        r
    }
}

/// An error type that can carry a [`BreakerError`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry the breaker's rejection: it does not implement `From<breaker_runtime::BreakerError>`",
    label = "this error type is returned when the breaker rejects or times out a call",
    note = "implement `From<breaker_runtime::BreakerError>` for `{Self}`, or give the breaker a `fallback = ...`"
)]
pub trait FromBreakerError {
    /// Converts.
    fn from_breaker_error(e: BreakerError) -> Self;
}

impl<E: From<BreakerError>> FromBreakerError for E {
    #[inline]
    fn from_breaker_error(e: BreakerError) -> Self {
        E::from(e)
    }
}

/// `Err(e.into())`.
#[inline]
pub fn reject<R: BreakerResult>(e: BreakerError) -> R
where
    R::Error: FromBreakerError,
{
    R::from_result(Err(R::Error::from_breaker_error(e)))
}

/// An owned argument handed to the fallback after the call consumed the original.
#[diagnostic::on_unimplemented(
    message = "`{Self}` must be `Clone` to be passed to the fallback",
    label = "owned argument of a breaker with a `fallback`",
    note = "the call consumes the argument, so a copy is kept for the fallback: derive or implement `Clone`, or take the argument by reference"
)]
pub trait FallbackArg: Sized {
    /// Clones.
    fn clone_for_fallback(&self) -> Self;
}

impl<T: Clone> FallbackArg for T {
    #[inline]
    fn clone_for_fallback(&self) -> Self {
        self.clone()
    }
}

/// Keeps a copy of an owned argument for the fallback.
#[inline]
pub fn clone_arg<T: FallbackArg>(v: &T) -> T {
    v.clone_for_fallback()
}

/// A fallback's output, which must be the annotated function's return type `R`.
#[diagnostic::on_unimplemented(
    message = "the fallback returns `{Self}`, but the function it stands in for returns `{R}`",
    label = "this fallback returns `{Self}`",
    note = "a fallback takes the same parameters and returns the same type as its function"
)]
pub trait FallbackOutput<R> {
    /// Identity.
    fn into_output(self) -> R;
}

impl<R> FallbackOutput<R> for R {
    #[inline]
    fn into_output(self) -> R {
        self
    }
}

/// Checks that a fallback's output is the annotated function's return type.
#[inline]
pub fn fallback_output<R, O: FallbackOutput<R>>(o: O) -> R {
    o.into_output()
}

/// Asserts at compile time that a breaker's return type is a `Result`.
#[inline]
pub fn assert_result<R: BreakerResult>() {}

/// Whether a result is an error (the swapped order tries the primary after a failing fallback).
#[inline]
pub fn is_err<R: BreakerResult>(r: &R) -> bool {
    r.err_ref().is_some()
}

/// Describes an error for alerts: its `Display` form, else its `Debug` form, else its type's
/// name. Picked at the expansion site by autoref: `(&&&Describe(e)).describe(out)` (the methods
/// take `&self`, so the impl for `&&Describe` answers a `&&&Describe` receiver first).
#[derive(Debug)]
pub struct Describe<'a, T: ?Sized>(pub &'a T);

/// See [`Describe`].
pub trait DescribeDisplay {
    /// Writes the description into `out`.
    fn describe(&self, out: &mut String);
}

impl<T: std::fmt::Display + ?Sized> DescribeDisplay for &&Describe<'_, T> {
    fn describe(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(out, "{}", self.0);
    }
}

/// See [`Describe`].
pub trait DescribeDebug {
    /// Writes the description into `out`.
    fn describe(&self, out: &mut String);
}

impl<T: std::fmt::Debug + ?Sized> DescribeDebug for &Describe<'_, T> {
    fn describe(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(out, "{:?}", self.0);
    }
}

/// See [`Describe`].
pub trait DescribeOther {
    /// Writes the description into `out`.
    fn describe(&self, out: &mut String);
}

impl<T: ?Sized> DescribeOther for Describe<'_, T> {
    fn describe(&self, out: &mut String) {
        out.push_str(std::any::type_name::<T>());
    }
}

/// The describer of an error type that cannot be named here (an `impl Trait` return type).
pub fn describe_opaque<E>(_: &E, out: &mut String) {
    out.push_str(std::any::type_name::<E>());
}
