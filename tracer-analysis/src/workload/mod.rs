//! Workloads: the operations the runner performs on a fresh file system while the probes record,
//! and that the model replays. A workload is pure data, written in TOML (the format is described
//! in `tracer-analysis/workloads/README.md`); [`Workload::thread_ops`] expands it, from its seed,
//! into the same concrete operation sequence for the runner and for the replay.
//!
//! Parsing validates everything that can be checked without running: errors carry the line and
//! column of the offending value and say what was expected.

mod builtins;
mod names;

use std::{fmt, ops::Range, path::Path, path::PathBuf, time::Duration};

use rand_chacha::{
    rand_core::{Rng, SeedableRng},
    ChaCha8Rng,
};
use serde::Deserialize;
use toml::Spanned;
use tracer_common::{OpKind, NAME_CAP};

pub use builtins::{builtin, builtins, listing};
pub use names::BUILTIN_NAMES;

/// The file system a workload runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FsKind {
    /// A fresh tmpfs. tmpfs deletes a dentry on its last reference and pins positive ones, so it
    /// holds no negative dentries and `drop_caches` never prunes its files.
    Tmpfs,
    /// The ext4 driver on a loop device, formatted by `mke2fs` (ext2 layout, which ext4 mounts).
    /// Keeps negative dentries; unused dentries are pruned by `drop_caches`.
    Ext4,
    /// minix on a loop device, formatted by `mkfs.minix`. Keeps negative dentries.
    Minix,
}

impl FsKind {
    pub const ALL: [FsKind; 3] = [FsKind::Tmpfs, FsKind::Ext4, FsKind::Minix];

    /// The name used in workload files, which is also the `mount -t` type.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Tmpfs => "tmpfs",
            FsKind::Ext4 => "ext4",
            FsKind::Minix => "minix",
        }
    }

    pub fn from_name(name: &str) -> Option<FsKind> {
        FsKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the file system lives on a loop device (and needs an image and a mkfs tool).
    pub fn is_disk(self) -> bool {
        self != FsKind::Tmpfs
    }

    /// Kernel modules the file system may need (a kernel that builds them in needs none).
    pub fn kernel_modules(self) -> &'static [&'static str] {
        match self {
            FsKind::Tmpfs => &[],
            FsKind::Ext4 => &["loop", "ext4"],
            FsKind::Minix => &["loop", "minix"],
        }
    }
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a thread chooses the value of `{i}` for each iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pick {
    /// Uniformly from the range, from the thread's seeded random stream.
    Random,
    /// `start + iteration % len`: every value in turn.
    Sequential,
}

/// A half-open, non-empty range `[start, end)` of values for `{i}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexRange {
    pub start: u64,
    pub end: u64,
}

impl IndexRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Always false for a validated range; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Part {
    Lit(String),
    Index,
}

/// A path relative to the workload file system's root, possibly containing `{i}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathPattern {
    text: String,
    parts: Vec<Part>,
}

impl PathPattern {
    /// Parses and checks a pattern: relative, no empty, `.` or `..` components, no NUL, and no
    /// placeholder other than `{i}`.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        if text.is_empty() {
            return Err("empty path; expected a path relative to the file system root".into());
        }
        if text.starts_with('/') {
            return Err(format!(
                "absolute path `{text}`; paths are relative to the workload's file system root"
            ));
        }
        if text.contains('\0') {
            return Err("path contains a NUL byte".into());
        }
        for comp in text.split('/') {
            match comp {
                "" => {
                    return Err(format!(
                        "path `{text}` has an empty component (`//` or a trailing `/`)"
                    ))
                }
                "." | ".." => {
                    return Err(format!(
                        "path `{text}` has a `{comp}` component; name each directory instead"
                    ))
                }
                _ => {}
            }
        }
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(pos) = rest.find(['{', '}']) {
            lit.push_str(&rest[..pos]);
            if rest[pos..].starts_with("{i}") {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Index);
                rest = &rest[pos + 3..];
            } else {
                return Err(format!(
                    "path `{text}`: `{{` and `}}` are only allowed in the placeholder `{{i}}`"
                ));
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(PathPattern {
            text: text.to_owned(),
            parts,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn uses_index(&self) -> bool {
        self.parts.contains(&Part::Index)
    }

    /// The concrete path for index `i` (ignored when the pattern has no `{i}`).
    pub fn render(&self, i: u64) -> String {
        let mut out = String::with_capacity(self.text.len() + 8);
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Index => {
                    use fmt::Write;
                    // Writing to a String cannot fail.
                    let _ = write!(out, "{i}");
                }
            }
        }
        out
    }

    /// Length in bytes of the longest rendering over `range` (the widest index is the last).
    fn max_len(&self, range: Option<IndexRange>) -> usize {
        let widest = range.map_or(0, |r| r.end - 1);
        self.render(widest).len()
    }
}

/// One operation of a thread's loop.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpSpec {
    pub kind: OpKind,
    /// Absent only for `drop_caches`.
    pub path: Option<PathPattern>,
    /// The rename target; present only for `rename`.
    pub to: Option<PathPattern>,
}

/// One setup step (`mkdir` or `create`), done before the run and not recorded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SetupStep {
    pub kind: OpKind,
    pub path: PathPattern,
    /// Every value in the range is used, in order (unlike a thread's range, which is drawn from).
    pub range: Option<IndexRange>,
}

/// One thread of a workload (replicas already expanded: `count = 2` gives two of these).
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadSpec {
    /// Unique within the workload; replicas are `name.0`, `name.1`, ...
    pub name: String,
    /// Loop at most this many times.
    pub iterations: Option<u64>,
    /// Stop starting operations after this long.
    pub duration: Option<Duration>,
    /// Also stop once every foreground (non-background) thread has finished.
    pub background: bool,
    /// Sleep this long between iterations (not recorded, not part of the plan).
    pub pause: Option<Duration>,
    /// Where `{i}` comes from; required when an op's path uses it.
    pub range: Option<IndexRange>,
    pub pick: Pick,
    pub ops: Vec<OpSpec>,
}

impl ThreadSpec {
    /// Whether the thread's operation list is finite by itself.
    pub fn is_bounded(&self) -> bool {
        self.iterations.is_some()
    }
}

/// A validated workload. Built only by parsing ([`Workload::from_toml`], [`Workload::load`],
/// [`builtin`]), so every instance passed validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub name: String,
    pub description: String,
    pub filesystem: FsKind,
    /// Seeds every thread's random stream (thread `t` uses ChaCha8 stream `t` of this seed).
    pub seed: u64,
    /// Size of the loop device image for disk file systems (sparse; only written blocks cost).
    pub image_mib: u32,
    pub setup: Vec<SetupStep>,
    pub threads: Vec<ThreadSpec>,
    source: String,
}

/// Thread number of setup steps in [`PlannedOp::thread`].
pub const SETUP_THREAD: u32 = u32::MAX;

/// One concrete operation, as both the runner and the model replay perform it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PlannedOp {
    /// Index into [`Workload::threads`], or [`SETUP_THREAD`].
    pub thread: u32,
    pub kind: OpKind,
    /// Relative to the file system root; empty for `drop_caches`.
    pub path: String,
    /// The rename target.
    pub path2: Option<String>,
}

impl PlannedOp {
    /// The bytes an op event carries as its name: the path, or "old\0new" for a rename.
    pub fn event_name(&self) -> Vec<u8> {
        let mut name = self.path.as_bytes().to_vec();
        if let Some(p2) = &self.path2 {
            name.push(0);
            name.extend_from_slice(p2.as_bytes());
        }
        name
    }
}

/// Limits that keep a workload sane; each is checked with an error naming the line.
pub mod limits {
    /// Threads after replica expansion.
    pub const MAX_THREADS: u64 = 64;
    /// Setup steps after range expansion.
    pub const MAX_SETUP_STEPS: u64 = 100_000;
    /// Loop image size bounds, MiB (mkfs.minix formats at most the first 64 MiB).
    pub const MIN_IMAGE_MIB: u32 = 4;
    pub const MAX_IMAGE_MIB: u32 = 4096;
    /// Default image size, MiB.
    pub const DEFAULT_IMAGE_MIB: u32 = 32;
    /// Workload and thread names, bytes: they become file names and report columns.
    pub const MAX_NAME_LEN: usize = 64;
    /// A thread's iterations, also after `--scale`.
    pub const MAX_ITERATIONS: u64 = 1_000_000_000;
    /// A thread's `duration_ms`, also after `--scale`: one day.
    pub const MAX_DURATION_MS: u64 = 86_400_000;
    /// A thread's `pause_us`: ten seconds.
    pub const MAX_PAUSE_US: u64 = 10_000_000;
    /// The `--scale` factor's upper bound (its lower bound is "above 0").
    pub const MAX_SCALE: f64 = 1e6;
}

/// Where a workload error points: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// Why a workload could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The text is not a valid workload. Display shows `origin:line:column: message` and the
    /// offending line with a marker under the value.
    #[error("{}", display_invalid(.origin, .at, .message, .excerpt))]
    Invalid {
        origin: String,
        at: Option<Location>,
        message: String,
        excerpt: String,
    },
    #[error("reading workload file {}", escape_controls(&path.display().to_string()))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no builtin workload `{}` and no file by that name (builtins: {known})", escape_controls(.name))]
    Unknown { name: String, known: String },
    #[error("scale factor {0:?} is out of range; allowed: above 0 up to {max:?}", max = limits::MAX_SCALE)]
    BadScale(f64),
    #[error(
        "scaling by {factor:?} gives thread `{thread}` {field} = {value:?}; allowed: up to {max}"
    )]
    ScaledTooFar {
        factor: f64,
        thread: String,
        field: &'static str,
        value: f64,
        max: u64,
    },
}

/// `text` with control characters escaped (`\u{1b}`, `\n`): names and lines from a file are
/// echoed in errors, and a terminal must not interpret them.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

fn display_invalid(origin: &str, at: &Option<Location>, message: &str, excerpt: &str) -> String {
    match at {
        Some(l) if excerpt.is_empty() => format!("{origin}:{}:{}: {message}", l.line, l.column),
        Some(l) => format!("{origin}:{}:{}: {message}\n{excerpt}", l.line, l.column),
        None => format!("{origin}: {message}"),
    }
}

impl WorkloadError {
    /// The location of an [`WorkloadError::Invalid`] error.
    pub fn location(&self) -> Option<Location> {
        match self {
            WorkloadError::Invalid { at, .. } => *at,
            _ => None,
        }
    }
}

/// Maps byte spans of one source text to line/column errors.
struct Src<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Src<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> WorkloadError {
        let message = escape_controls(&message.into()).into_owned();
        let origin = escape_controls(self.origin).into_owned();
        let Some(span) = span else {
            return WorkloadError::Invalid {
                origin,
                at: None,
                message,
                excerpt: String::new(),
            };
        };
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |p| p + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |p| start + p);
        let line = self.text[..start].matches('\n').count() + 1;
        let column = self.text[line_start..start].chars().count() + 1;
        // The excerpt is escaped like the message; the marker sits under the escaped text.
        let before = escape_controls(&self.text[line_start..start]);
        let marked = escape_controls(&self.text[start..span.end.clamp(start, line_end)]);
        let after = escape_controls(&self.text[span.end.clamp(start, line_end)..line_end]);
        let gutter = line.to_string();
        let excerpt = format!(
            "{gutter} | {before}{marked}{after}\n{pad} | {spaces}{marks}",
            pad = " ".repeat(gutter.len()),
            spaces = " ".repeat(before.chars().count()),
            marks = "^".repeat(marked.chars().count().max(1)),
        );
        WorkloadError::Invalid {
            origin,
            at: Some(Location { line, column }),
            message,
            excerpt,
        }
    }

    fn at<T>(&self, v: &Spanned<T>, message: impl Into<String>) -> WorkloadError {
        self.error(Some(v.span()), message)
    }
}

// The TOML shapes, as written. Validation turns them into the public types above.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    filesystem: Option<Spanned<String>>,
    #[serde(default)]
    seed: u64,
    image_mib: Option<Spanned<u32>>,
    #[serde(default)]
    setup: Vec<Spanned<RawSetup>>,
    #[serde(default)]
    thread: Vec<Spanned<RawThread>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    op: Spanned<String>,
    path: Spanned<String>,
    range: Option<Spanned<Vec<u64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThread {
    name: Spanned<String>,
    count: Option<Spanned<u64>>,
    iterations: Option<Spanned<u64>>,
    duration_ms: Option<Spanned<u64>>,
    #[serde(default)]
    background: bool,
    pause_us: Option<Spanned<u64>>,
    range: Option<Spanned<Vec<u64>>>,
    pick: Option<Spanned<String>>,
    ops: Spanned<Vec<Spanned<RawOp>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOp {
    op: Spanned<String>,
    path: Option<Spanned<String>>,
    to: Option<Spanned<String>>,
}

fn op_names() -> String {
    OpKind::ALL.map(|k| k.name()).join(", ")
}

/// Why `s` cannot name a workload or a thread, if it cannot.
fn name_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        Some("is empty".into())
    } else if s.len() > limits::MAX_NAME_LEN {
        Some(format!(
            "is {} bytes long; allowed: up to {}",
            s.len(),
            limits::MAX_NAME_LEN
        ))
    } else if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("may hold only letters, digits, `-`, `_` and `.`".into())
    } else if s.starts_with('.') {
        // `.` and `..` are directories, and names become file names.
        Some("must not start with `.`".into())
    } else {
        None
    }
}

impl Src<'_> {
    fn range(&self, raw: &Spanned<Vec<u64>>) -> Result<IndexRange, WorkloadError> {
        match *raw.get_ref().as_slice() {
            [start, end] if start < end => Ok(IndexRange { start, end }),
            [start, end] => Err(self.at(
                raw,
                format!("empty range [{start}, {end}]; expected [start, end] with start < end (end is excluded)"),
            )),
            _ => Err(self.at(
                raw,
                "range takes two integers [start, end] (end is excluded)",
            )),
        }
    }

    fn pattern(&self, raw: &Spanned<String>) -> Result<PathPattern, WorkloadError> {
        PathPattern::parse(raw.get_ref()).map_err(|m| self.at(raw, m))
    }

    fn op_kind(&self, raw: &Spanned<String>) -> Result<OpKind, WorkloadError> {
        OpKind::ALL
            .into_iter()
            .find(|k| k.name() == raw.get_ref())
            .ok_or_else(|| {
                self.at(
                    raw,
                    format!(
                        "unknown op `{}`; expected one of {}",
                        raw.get_ref(),
                        op_names()
                    ),
                )
            })
    }

    /// Checks that `{i}` is used exactly when a range supplies it, and that rendered names fit
    /// an event.
    fn check_index_use(
        &self,
        raw: &Spanned<String>,
        pat: &PathPattern,
        range: Option<IndexRange>,
        owner: &str,
    ) -> Result<(), WorkloadError> {
        if pat.uses_index() && range.is_none() {
            return Err(self.at(
                raw,
                format!(
                    "path `{}` uses {{i}} but {owner} has no `range = [start, end]`",
                    pat.as_str()
                ),
            ));
        }
        let len = pat.max_len(range);
        if len > NAME_CAP {
            return Err(self.at(
                raw,
                format!(
                    "path `{}` renders up to {len} bytes; op events keep {NAME_CAP}, use shorter names",
                    pat.as_str()
                ),
            ));
        }
        Ok(())
    }

    fn setup_step(&self, raw: &Spanned<RawSetup>) -> Result<SetupStep, WorkloadError> {
        let r = raw.get_ref();
        let kind = self.op_kind(&r.op)?;
        if !matches!(kind, OpKind::Mkdir | OpKind::Create) {
            return Err(self.at(
                &r.op,
                format!(
                    "setup op `{}` is not supported; setup takes mkdir and create",
                    kind.name()
                ),
            ));
        }
        let path = self.pattern(&r.path)?;
        let range = r.range.as_ref().map(|s| self.range(s)).transpose()?;
        if let (Some(raw_range), false) = (&r.range, path.uses_index()) {
            return Err(self.at(
                raw_range,
                format!(
                    "setup range given but path `{}` has no {{i}}; the step would repeat the same path",
                    path.as_str()
                ),
            ));
        }
        self.check_index_use(&r.path, &path, range, "this setup step")?;
        Ok(SetupStep { kind, path, range })
    }

    fn op(
        &self,
        raw: &Spanned<RawOp>,
        range: Option<IndexRange>,
        thread: &str,
    ) -> Result<OpSpec, WorkloadError> {
        let r = raw.get_ref();
        let kind = self.op_kind(&r.op)?;
        let owner = format!("thread `{thread}`");
        let path = match (&r.path, kind) {
            (Some(p), OpKind::DropCaches) => {
                return Err(self.at(p, "drop_caches takes no path (it prunes the whole dcache)"))
            }
            (None, OpKind::DropCaches) => None,
            (None, _) => return Err(self.at(raw, format!("op `{}` needs a `path`", kind.name()))),
            (Some(p), _) => {
                let pat = self.pattern(p)?;
                self.check_index_use(p, &pat, range, &owner)?;
                Some(pat)
            }
        };
        let to = match (&r.to, kind) {
            (Some(t), OpKind::Rename | OpKind::Exchange) => {
                let pat = self.pattern(t)?;
                self.check_index_use(t, &pat, range, &owner)?;
                let total = path.as_ref().map_or(0, |p| p.max_len(range)) + 1 + pat.max_len(range);
                if total > NAME_CAP {
                    return Err(self.at(
                        t,
                        format!(
                            "rename paths take up to {total} bytes with their separator; op events keep {NAME_CAP}, use shorter names"
                        ),
                    ));
                }
                Some(pat)
            }
            (None, OpKind::Rename | OpKind::Exchange) => {
                return Err(self.at(
                    raw,
                    format!("op `{}` needs `to`, the other path", kind.name()),
                ))
            }
            (Some(t), _) => {
                return Err(self.at(
                    t,
                    format!(
                        "only rename and exchange take `to`; op `{}` does not",
                        kind.name()
                    ),
                ))
            }
            (None, _) => None,
        };
        Ok(OpSpec { kind, path, to })
    }

    fn thread(&self, raw: &Spanned<RawThread>) -> Result<Vec<ThreadSpec>, WorkloadError> {
        let r = raw.get_ref();
        let name = r.name.get_ref();
        if let Some(problem) = name_problem(name) {
            return Err(self.at(&r.name, format!("thread name `{name}` {problem}")));
        }
        let count = match &r.count {
            Some(c) if *c.get_ref() == 0 || *c.get_ref() > limits::MAX_THREADS => {
                return Err(self.at(
                    c,
                    format!(
                        "count = {} is out of range; allowed: 1 to {}",
                        c.get_ref(),
                        limits::MAX_THREADS
                    ),
                ))
            }
            Some(c) => *c.get_ref(),
            None => 1,
        };
        for (field, value, max) in [
            ("iterations", &r.iterations, limits::MAX_ITERATIONS),
            ("duration_ms", &r.duration_ms, limits::MAX_DURATION_MS),
        ] {
            if let Some(v) = value.as_ref().filter(|v| !(1..=max).contains(v.get_ref())) {
                return Err(self.at(
                    v,
                    format!(
                        "{field} = {} is out of range; allowed: 1 to {max}",
                        v.get_ref()
                    ),
                ));
            }
        }
        if let Some(p) = r
            .pause_us
            .as_ref()
            .filter(|p| *p.get_ref() > limits::MAX_PAUSE_US)
        {
            return Err(self.at(
                p,
                format!(
                    "pause_us = {} is out of range; allowed: 0 to {}",
                    p.get_ref(),
                    limits::MAX_PAUSE_US
                ),
            ));
        }
        if !r.background && r.iterations.is_none() && r.duration_ms.is_none() {
            return Err(self.at(
                &r.name,
                format!(
                    "thread `{name}` never ends; give it `iterations` or `duration_ms`, or make it `background = true`"
                ),
            ));
        }
        let range = r.range.as_ref().map(|s| self.range(s)).transpose()?;
        let pick = match &r.pick {
            None => Pick::Random,
            Some(p) => match p.get_ref().as_str() {
                "random" => Pick::Random,
                "sequential" => Pick::Sequential,
                other => {
                    return Err(self.at(
                        p,
                        format!("unknown pick `{other}`; expected random or sequential"),
                    ))
                }
            },
        };
        if r.ops.get_ref().is_empty() {
            return Err(self.at(&r.ops, format!("thread `{name}` has no ops")));
        }
        let ops = r
            .ops
            .get_ref()
            .iter()
            .map(|o| self.op(o, range, name))
            .collect::<Result<Vec<_>, _>>()?;
        let spec = ThreadSpec {
            name: name.clone(),
            iterations: r.iterations.as_ref().map(|s| *s.get_ref()),
            duration: r
                .duration_ms
                .as_ref()
                .map(|s| Duration::from_millis(*s.get_ref())),
            background: r.background,
            pause: r
                .pause_us
                .as_ref()
                .map(|s| *s.get_ref())
                .filter(|&us| us > 0)
                .map(Duration::from_micros),
            range,
            pick,
            ops,
        };
        Ok(if count == 1 {
            vec![spec]
        } else {
            (0..count)
                .map(|k| ThreadSpec {
                    name: format!("{name}.{k}"),
                    ..spec.clone()
                })
                .collect()
        })
    }

    fn workload(&self, raw: RawWorkload) -> Result<Workload, WorkloadError> {
        let name = raw.name.get_ref();
        if let Some(problem) = name_problem(name) {
            return Err(self.at(&raw.name, format!("workload name `{name}` {problem}")));
        }
        let filesystem = match &raw.filesystem {
            None => FsKind::Tmpfs,
            Some(f) => FsKind::from_name(f.get_ref()).ok_or_else(|| {
                self.at(
                    f,
                    format!(
                        "unknown filesystem `{}`; expected tmpfs, ext4 or minix",
                        f.get_ref()
                    ),
                )
            })?,
        };
        let image_mib = match &raw.image_mib {
            Some(m) if !filesystem.is_disk() => {
                return Err(self.at(m, "image_mib applies to ext4 and minix only"))
            }
            Some(m) if !(limits::MIN_IMAGE_MIB..=limits::MAX_IMAGE_MIB).contains(m.get_ref()) => {
                return Err(self.at(
                    m,
                    format!(
                        "image_mib must be {} to {}",
                        limits::MIN_IMAGE_MIB,
                        limits::MAX_IMAGE_MIB
                    ),
                ))
            }
            Some(m) => *m.get_ref(),
            None => limits::DEFAULT_IMAGE_MIB,
        };
        let mut setup = Vec::with_capacity(raw.setup.len());
        let mut setup_total = 0u64;
        for s in &raw.setup {
            let step = self.setup_step(s)?;
            setup_total += step.range.map_or(1, |r| r.len());
            if setup_total > limits::MAX_SETUP_STEPS {
                return Err(self.at(
                    s,
                    format!(
                        "setup expands to more than {} steps",
                        limits::MAX_SETUP_STEPS
                    ),
                ));
            }
            setup.push(step);
        }
        if raw.thread.is_empty() {
            return Err(self.error(
                Some(raw.name.span()),
                "workload has no threads; add at least one [[thread]] table",
            ));
        }
        let mut threads = Vec::new();
        for t in &raw.thread {
            for spec in self.thread(t)? {
                if threads.iter().any(|o: &ThreadSpec| o.name == spec.name) {
                    return Err(self.at(
                        &t.get_ref().name,
                        format!("thread name `{}` is used twice", spec.name),
                    ));
                }
                threads.push(spec);
            }
            if threads.len() as u64 > limits::MAX_THREADS {
                return Err(self.at(
                    t,
                    format!("more than {} threads in all", limits::MAX_THREADS),
                ));
            }
        }
        if threads.iter().all(|t| t.background) {
            return Err(self.error(
                Some(raw.name.span()),
                "every thread is background; at least one foreground thread must define when the run ends",
            ));
        }
        Ok(Workload {
            name: name.clone(),
            description: raw.description,
            filesystem,
            seed: raw.seed,
            image_mib,
            setup,
            threads,
            source: self.text.to_owned(),
        })
    }
}

impl Workload {
    /// Parses and validates a workload; `origin` names the text in errors (a file name).
    pub fn from_toml(text: &str, origin: &str) -> Result<Workload, WorkloadError> {
        let src = Src { origin, text };
        let raw: RawWorkload =
            toml::from_str(text).map_err(|e| src.error(e.span(), e.message()))?;
        src.workload(raw)
    }

    /// Reads a workload file.
    pub fn from_file(path: &Path) -> Result<Workload, WorkloadError> {
        let text = std::fs::read_to_string(path).map_err(|source| WorkloadError::Read {
            path: path.to_owned(),
            source,
        })?;
        Workload::from_toml(&text, &path.display().to_string())
    }

    /// A builtin by name, else a file by path.
    pub fn load(name_or_path: &str) -> Result<Workload, WorkloadError> {
        if let Some(w) = builtin(name_or_path) {
            return w;
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            return Workload::from_file(path);
        }
        Err(WorkloadError::Unknown {
            name: name_or_path.to_owned(),
            known: BUILTIN_NAMES.join(", "),
        })
    }

    /// The TOML text this workload was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Multiplies every thread's iterations and duration by `factor` (rounded, at least 1), for
    /// quick test runs or longer soaks. Setup is unchanged. Results beyond the limits a file
    /// may state are refused (and nothing is changed).
    pub fn scale(&mut self, factor: f64) -> Result<(), WorkloadError> {
        if !(factor.is_finite() && factor > 0.0 && factor <= limits::MAX_SCALE) {
            return Err(WorkloadError::BadScale(factor));
        }
        let too_far = |t: &ThreadSpec, field, value, max| WorkloadError::ScaledTooFar {
            factor,
            thread: t.name.clone(),
            field,
            value,
            max,
        };
        let mut scaled = Vec::with_capacity(self.threads.len());
        for t in &self.threads {
            let iterations = match t.iterations {
                Some(n) => {
                    let v = (n as f64 * factor).round().max(1.0);
                    if v > limits::MAX_ITERATIONS as f64 {
                        return Err(too_far(t, "iterations", v, limits::MAX_ITERATIONS));
                    }
                    Some(v as u64)
                }
                None => None,
            };
            let duration = match t.duration {
                Some(d) => {
                    let ms = (d.as_secs_f64() * 1e3 * factor).max(1.0);
                    if ms > limits::MAX_DURATION_MS as f64 {
                        return Err(too_far(t, "duration_ms", ms, limits::MAX_DURATION_MS));
                    }
                    Some(Duration::from_secs_f64(ms / 1e3))
                }
                None => None,
            };
            scaled.push((iterations, duration));
        }
        for (t, (iterations, duration)) in self.threads.iter_mut().zip(scaled) {
            t.iterations = iterations;
            t.duration = duration;
        }
        Ok(())
    }

    /// Operations a full run performs when every thread is bounded by `iterations`; `None` when
    /// some thread runs for a duration or until the others finish.
    pub fn planned_ops(&self) -> Option<u64> {
        self.threads
            .iter()
            .map(|t| t.iterations.map(|n| n.saturating_mul(t.ops.len() as u64)))
            .try_fold(0u64, |sum, n| n.map(|n| sum.saturating_add(n)))
    }

    /// Setup steps in order, with ranges expanded; `thread` is [`SETUP_THREAD`].
    pub fn setup_ops(&self) -> Vec<PlannedOp> {
        let mut out = Vec::new();
        for s in &self.setup {
            let indexes = s.range.map_or(0..1, |r| r.start..r.end);
            for i in indexes {
                out.push(PlannedOp {
                    thread: SETUP_THREAD,
                    kind: s.kind,
                    path: s.path.render(i),
                    path2: None,
                });
            }
        }
        out
    }

    /// The deterministic operation stream of thread `thread` (an index into
    /// [`Workload::threads`]); `None` if there is no such thread. Finite when the thread has
    /// `iterations`, endless otherwise (the runner stops it by time or when the foreground
    /// threads are done).
    pub fn thread_ops(&self, thread: usize) -> Option<ThreadOps<'_>> {
        self.threads
            .get(thread)
            .map(|spec| self.ops_of(thread, spec))
    }

    /// [`Workload::thread_ops`] of every thread, in order.
    pub fn all_thread_ops(&self) -> impl Iterator<Item = ThreadOps<'_>> {
        self.threads
            .iter()
            .enumerate()
            .map(|(t, spec)| self.ops_of(t, spec))
    }

    fn ops_of<'w>(&'w self, thread: usize, spec: &'w ThreadSpec) -> ThreadOps<'w> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(thread as u64);
        ThreadOps {
            spec,
            thread: thread as u32,
            rng,
            iteration: 0,
            pos: 0,
            index: 0,
        }
    }

    /// Every thread's operations, unbounded threads cut at `unbounded_iterations` iterations.
    pub fn expand(&self, unbounded_iterations: u64) -> Vec<Vec<PlannedOp>> {
        self.all_thread_ops()
            .map(|ops| {
                let cap = ops.spec.iterations.unwrap_or(unbounded_iterations);
                let n = cap.saturating_mul(ops.spec.ops.len() as u64);
                ops.take(usize::try_from(n).unwrap_or(usize::MAX)).collect()
            })
            .collect()
    }
}

/// Iterator over one thread's planned operations; see [`Workload::thread_ops`].
#[derive(Clone, Debug)]
pub struct ThreadOps<'w> {
    spec: &'w ThreadSpec,
    thread: u32,
    rng: ChaCha8Rng,
    iteration: u64,
    pos: usize,
    index: u64,
}

impl<'w> ThreadOps<'w> {
    /// The thread these operations belong to.
    pub fn spec(&self) -> &'w ThreadSpec {
        self.spec
    }

    /// The iteration the next operation belongs to (0-based).
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// Whether the next operation starts an iteration.
    pub fn at_iteration_start(&self) -> bool {
        self.pos == 0
    }

    fn draw(&mut self, range: IndexRange) -> u64 {
        match self.spec.pick {
            Pick::Sequential => range.start + self.iteration % range.len(),
            // Multiply-shift maps a uniform u64 onto the range (bias at most len / 2^64); unlike
            // a library's sampler, its output can never change under a dependency update.
            Pick::Random => {
                range.start
                    + ((u128::from(self.rng.next_u64()) * u128::from(range.len())) >> 64) as u64
            }
        }
    }
}

impl Iterator for ThreadOps<'_> {
    type Item = PlannedOp;

    fn next(&mut self) -> Option<PlannedOp> {
        if self.spec.iterations.is_some_and(|n| self.iteration >= n) {
            return None;
        }
        if self.pos == 0 {
            if let Some(range) = self.spec.range {
                self.index = self.draw(range);
            }
        }
        let op = &self.spec.ops[self.pos];
        let planned = PlannedOp {
            thread: self.thread,
            kind: op.kind,
            path: op
                .path
                .as_ref()
                .map_or_else(String::new, |p| p.render(self.index)),
            path2: op.to.as_ref().map(|p| p.render(self.index)),
        };
        self.pos += 1;
        if self.pos == self.spec.ops.len() {
            self.pos = 0;
            self.iteration += 1;
        }
        Some(planned)
    }
}

#[cfg(test)]
mod tests;
