//! Errors: [`Errno`] is what a model syscall returns (the user-visible result the diff compares);
//! [`ModelError`] is a misuse of the library (bad profile name, bad replay input).

/// A syscall error, as the kernel would return it (`-errno` in events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Errno {
    #[error("ENOENT: no such file or directory")]
    ENOENT,
    /// Internal to the path walk (RCU-walk must restart in ref-walk); never returned by a
    /// syscall.
    #[error("ECHILD: RCU-walk cannot continue")]
    ECHILD,
    #[error("EBUSY: device or resource busy")]
    EBUSY,
    #[error("EEXIST: file exists")]
    EEXIST,
    #[error("ENOTDIR: not a directory")]
    ENOTDIR,
    #[error("EISDIR: is a directory")]
    EISDIR,
    #[error("EINVAL: invalid argument")]
    EINVAL,
    #[error("ENAMETOOLONG: file name too long")]
    ENAMETOOLONG,
    #[error("ENOTEMPTY: directory not empty")]
    ENOTEMPTY,
}

impl Errno {
    /// The Linux x86-64 errno value.
    pub fn code(self) -> i32 {
        match self {
            Errno::ENOENT => 2,
            Errno::ECHILD => 10,
            Errno::EBUSY => 16,
            Errno::EEXIST => 17,
            Errno::ENOTDIR => 20,
            Errno::EISDIR => 21,
            Errno::EINVAL => 22,
            Errno::ENAMETOOLONG => 36,
            Errno::ENOTEMPTY => 39,
        }
    }
}

/// A misuse of the library, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error(
        "unknown profile {0:?}; known: linux-2.6.38, linux-2.6.39, linux-3.0, linux-3.3, \
         linux-3.5, linux-3.12, linux-4.0, linux-4.7, linux-4.8, linux-4.12, linux-4.17, \
         linux-4.18, linux-5.3, linux-5.7, linux-5.15, linux-6.1, linux-6.8, linux-6.15, \
         linux-6.19, linux-7.2, or linux-<release> (e.g. linux-5.10)"
    )]
    UnknownProfile(String),
    #[error("cannot read a kernel version from release {0:?}; expected e.g. \"6.1.0-27-amd64\"")]
    BadRelease(String),
    #[error("kernel release {0:?} predates RCU path walk (2.6.38); no profile models it")]
    ReleaseTooOld(String),
    #[error("replay op {index}: {kind} needs a second path")]
    MissingSecondPath { index: usize, kind: &'static str },
    #[error("setting up {path:?} failed: {errno}")]
    Populate { path: String, errno: Errno },
    #[error("a replay thread panicked")]
    ThreadPanicked,
}
