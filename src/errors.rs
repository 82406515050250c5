//! Ganeti's errors as they cross LUXI and land in job files (2.5.2
//! `errors.py`): a class name and a list of arguments, encoded as
//! `[class, [args...]]` (`errors.EncodeException`).
//!
//! Only the class names 2.5.2 knows are produced here; the `Display` text is
//! what 2.5.2's command-line tools print for the error.
#![forbid(unsafe_code)]

use std::fmt;

use serde_json::{json, Value};

/// `ECODE_*`: the second argument of `OpPrereqError`.
pub const ECODE_RESOLVER: &str = "resolver_error";
pub const ECODE_NORES: &str = "insufficient_resources";
pub const ECODE_INVAL: &str = "wrong_input";
pub const ECODE_STATE: &str = "wrong_state";
pub const ECODE_NOENT: &str = "unknown_entity";
pub const ECODE_EXISTS: &str = "already_exists";
pub const ECODE_NOTUNIQUE: &str = "resource_not_unique";
pub const ECODE_FAULT: &str = "internal_error";
pub const ECODE_ENVIRON: &str = "environment_error";

/// The `GenericError` subclasses of 2.5.2 (spec masterd-luxi 1.5).
pub const KNOWN_CLASSES: &[&str] = &[
    "GenericError",
    "LVMError",
    "LockError",
    "HypervisorError",
    "ProgrammerError",
    "BlockDeviceError",
    "ConfigurationError",
    "ConfigVersionMismatch",
    "ReservationError",
    "RemoteError",
    "SignatureError",
    "ParameterError",
    "OpPrereqError",
    "OpExecError",
    "OpResultError",
    "OpCodeUnknown",
    "JobLost",
    "JobFileCorrupted",
    "ResolverError",
    "HooksFailure",
    "HooksAbort",
    "UnitParseError",
    "ParseError",
    "TypeEnforcementError",
    "SshKeyError",
    "TagError",
    "CommandError",
    "StorageError",
    "InotifyError",
    "JobQueueError",
    "JobQueueDrainError",
    "JobQueueFull",
    "ConfdRequestError",
    "ConfdMagicError",
    "ConfdClientError",
    "UdpDataSizeError",
    "NoCtypesError",
    "IPAddressError",
    "LuxiError",
    "QueryFilterParseError",
];

/// A Ganeti error: class name and arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct GanetiError {
    pub class: &'static str,
    pub args: Vec<Value>,
}

impl GanetiError {
    pub fn new(class: &'static str, args: Vec<Value>) -> Self {
        debug_assert!(
            KNOWN_CLASSES.contains(&class),
            "unknown error class {class}"
        );
        GanetiError { class, args }
    }

    /// An error whose only argument is a message.
    pub fn msg(class: &'static str, msg: impl Into<String>) -> Self {
        Self::new(class, vec![Value::String(msg.into())])
    }

    /// `OpPrereqError(msg, ecode)`.
    pub fn prereq(msg: impl Into<String>, ecode: &str) -> Self {
        Self::new(
            "OpPrereqError",
            vec![Value::String(msg.into()), json!(ecode)],
        )
    }

    /// `OpExecError(msg)`.
    pub fn exec(msg: impl Into<String>) -> Self {
        Self::msg("OpExecError", msg)
    }

    /// `[class, [args...]]`, as LUXI answers and job files carry it.
    pub fn encode(&self) -> Value {
        json!([self.class, self.args])
    }

    /// The inverse of [`GanetiError::encode`] (2.5.2 `MaybeRaise`): `None`
    /// unless `v` is `[known class, [args...]]`.
    pub fn decode(v: &Value) -> Option<GanetiError> {
        let [class, args] = v.as_array()?.as_slice() else {
            return None;
        };
        let class = KNOWN_CLASSES.iter().find(|c| Some(**c) == class.as_str())?;
        Some(GanetiError {
            class,
            args: args.as_array()?.clone(),
        })
    }

    /// The first argument when it is a string (the message).
    pub fn message(&self) -> Option<&str> {
        self.args.first()?.as_str()
    }
}

/// Python's `str()` of the exception: the lone argument itself, else the
/// tuple of arguments.
impl fmt::Display for GanetiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.args.as_slice() {
            [] => Ok(()),
            [Value::String(s)] => f.write_str(s),
            [one] => write!(f, "{one}"),
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .map(|a| match a {
                        Value::String(s) => format!("'{s}'"),
                        other => other.to_string(),
                    })
                    .collect();
                write!(f, "({})", parts.join(", "))
            }
        }
    }
}

impl std::error::Error for GanetiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_as_2_5_2() {
        let e = GanetiError::prereq("Node 'foo' not known", ECODE_NOENT);
        let v = e.encode();
        assert_eq!(
            v,
            json!(["OpPrereqError", ["Node 'foo' not known", "unknown_entity"]])
        );
        assert_eq!(GanetiError::decode(&v), Some(e));
        assert_eq!(
            GanetiError::new("JobQueueFull", vec![]).encode(),
            json!(["JobQueueFull", []])
        );
        assert_eq!(GanetiError::decode(&json!(["NoSuchError", []])), None);
        assert_eq!(GanetiError::decode(&json!("Caught exception: x")), None);
    }

    #[test]
    fn displays_like_python_str() {
        assert_eq!(GanetiError::exec("boom").to_string(), "boom");
        assert_eq!(
            GanetiError::prereq("bad", ECODE_INVAL).to_string(),
            "('bad', 'wrong_input')"
        );
    }
}
