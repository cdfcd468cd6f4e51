//! Kernel modules for the guest: find them in a `lib/modules/<release>` tree, add their
//! dependencies, order them so each loads after what it needs, and decompress them for busybox's
//! `insmod` (which reads plain ELF only).
//!
//! Dependencies come from `modules.dep` when the tree has one (an installed system). A
//! distribution package has none (depmod runs at install time), so then each module's own
//! `.modinfo` `depends=` says the same thing.
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

use super::elf;

/// How a module file is compressed (`CONFIG_MODULE_COMPRESS_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Codec {
    #[default]
    None,
    Xz,
    Zstd,
    Gzip,
}

impl Codec {
    /// The host tool that decompresses it to stdout, and the Debian package holding the tool.
    fn tool(self) -> Option<(&'static str, &'static str)> {
        match self {
            Codec::None => None,
            Codec::Xz => Some(("xz", "xz-utils")),
            Codec::Zstd => Some(("zstd", "zstd")),
            Codec::Gzip => Some(("gzip", "gzip")),
        }
    }
}

/// Module name (as `lsmod` and `depends=` spell it: `-` becomes `_`) and compression of a file
/// name, or None when the file is not a module.
pub fn module_name(file_name: &str) -> Option<(String, Codec)> {
    let (stem, codec) = if let Some(s) = file_name.strip_suffix(".ko") {
        (s, Codec::None)
    } else if let Some(s) = file_name.strip_suffix(".ko.xz") {
        (s, Codec::Xz)
    } else if let Some(s) = file_name.strip_suffix(".ko.zst") {
        (s, Codec::Zstd)
    } else if let Some(s) = file_name.strip_suffix(".ko.gz") {
        (s, Codec::Gzip)
    } else {
        return None;
    };
    Some((normalize(stem), codec))
}

/// The file name without `.ko` and compression suffix, as spelled on disk.
fn stem(file_name: &str) -> &str {
    file_name.split(".ko").next().unwrap_or(file_name)
}

fn normalize(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// One module to load in the guest.
#[derive(Debug, Clone)]
pub struct ModuleFile {
    pub name: String,
    /// The file in the tree (maybe compressed).
    pub source: PathBuf,
    pub codec: Codec,
    /// Where it goes in the initramfs, relative to `/`, uncompressed (`lib/modules/<r>/....ko`).
    pub guest_path: String,
}

/// A `lib/modules/<release>` directory.
pub struct ModuleTree {
    root: PathBuf,
    release: String,
    /// name → path relative to `root`
    files: BTreeMap<String, PathBuf>,
    builtin: BTreeSet<String>,
    /// Aliases of built-in modules (from modules.builtin.modinfo).
    builtin_aliases: BTreeSet<String>,
    /// From modules.dep when present: name → names it depends on.
    dep_file: Option<BTreeMap<String, Vec<String>>>,
}

impl ModuleTree {
    /// Indexes the tree at `root`, whose directory name is the kernel release.
    pub fn open(root: &Path) -> Result<Self> {
        let release = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{} has no directory name", root.display()))?;
        let mut files = BTreeMap::new();
        index(root, Path::new(""), &mut files)
            .with_context(|| format!("listing modules under {}", root.display()))?;
        let builtin = match fs::read_to_string(root.join("modules.builtin")) {
            Ok(text) => text
                .lines()
                .filter_map(|l| module_name(l.rsplit('/').next()?).map(|(n, _)| n))
                .collect(),
            Err(_) => BTreeSet::new(),
        };
        let builtin_aliases = match fs::read(root.join("modules.builtin.modinfo")) {
            Ok(bytes) => bytes
                .split(|&c| c == 0)
                .filter_map(|rec| {
                    let rec = String::from_utf8_lossy(rec);
                    let (key, value) = rec.split_once('=')?;
                    key.ends_with(".alias").then(|| value.to_owned())
                })
                .collect(),
            Err(_) => BTreeSet::new(),
        };
        let dep_file = match fs::read_to_string(root.join("modules.dep")) {
            Ok(text) => Some(parse_modules_dep(&text)),
            Err(_) => None,
        };
        if files.is_empty() && builtin.is_empty() {
            bail!(
                "{} holds no kernel modules (expected a lib/modules/<release> tree with kernel/**/*.ko)",
                root.display()
            );
        }
        Ok(ModuleTree {
            root: root.to_owned(),
            release,
            files,
            builtin,
            builtin_aliases,
            dep_file,
        })
    }

    /// The modules to load for `wanted` (names, `-` or `_`), dependencies first, each once, with
    /// the modules their `pre:` soft dependencies name (as modprobe does: ext4 wants crc32c).
    /// Built-in modules are left out. Also returns notes for the user (soft dependencies no
    /// module provides).
    pub fn load_order(&self, wanted: &[String]) -> Result<(Vec<ModuleFile>, Vec<String>)> {
        let mut notes = Vec::new();
        let wanted: Vec<String> = wanted.iter().map(|w| normalize(w)).collect();
        let order = closure(&wanted, |name| {
            if self.builtin.contains(name) && !self.files.contains_key(name) {
                return Ok(None);
            }
            let rel = self.files.get(name).with_context(|| {
                format!(
                    "module {name} is neither in {} nor built into the kernel (modules.builtin)",
                    self.root.display()
                )
            })?;
            let info = self.modinfo(rel)?;
            self.check_vermagic(name, &info)?;
            let mut soft = Vec::new();
            for (k, v) in &info {
                if k != "softdep" {
                    continue;
                }
                for alias in softdep_pre(v) {
                    match self.provider(&alias) {
                        Provider::Builtin => {}
                        Provider::Module(m) => soft.push(m),
                        Provider::Unknown => notes.push(format!(
                            "module {name} has a soft dependency on {alias}, which no module of \
                             the tree provides by that name; name its module in --load-modules \
                             if the workload needs it"
                        )),
                    }
                }
            }
            let deps = match &self.dep_file {
                Some(map) => map.get(name).cloned().unwrap_or_default(),
                None => info
                    .iter()
                    .filter(|(k, _)| k == "depends")
                    .flat_map(|(_, v)| v.split(',').filter(|d| !d.is_empty()).map(normalize))
                    .collect(),
            };
            soft.extend(deps);
            Ok(Some(soft))
        })?;
        let files = order
            .into_iter()
            .map(|name| {
                let rel = &self.files[&name];
                let file_name = rel.file_name().unwrap_or_default().to_string_lossy();
                let (_, codec) = module_name(&file_name).unwrap_or_default();
                let plain = rel.with_file_name(format!(
                    "{name_in_file}.ko",
                    name_in_file = stem(&file_name)
                ));
                ModuleFile {
                    guest_path: format!("lib/modules/{}/{}", self.release, plain.display()),
                    source: self.root.join(rel),
                    codec,
                    name,
                }
            })
            .collect();
        Ok((files, notes))
    }

    /// What provides `alias`. Modules are named after what they provide (crc32c_generic gives
    /// crypto-crc32c), so only modules named like the alias are read to find it, the generic
    /// implementation first: another may need CPU features the guest lacks.
    fn provider(&self, alias: &str) -> Provider {
        let exact = normalize(alias);
        if self.builtin_aliases.contains(alias)
            || (self.builtin.contains(&exact) && !self.files.contains_key(&exact))
        {
            return Provider::Builtin;
        }
        if self.files.contains_key(&exact) {
            return Provider::Module(exact);
        }
        let stem = normalize(alias.strip_prefix("crypto-").unwrap_or(alias));
        let generic = format!("{stem}_generic");
        let mut candidates: Vec<&String> =
            self.files.keys().filter(|k| k.starts_with(&stem)).collect();
        candidates.sort_by_key(|k| (**k != stem, **k != generic, k.len()));
        for c in candidates.into_iter().take(8) {
            let Ok(info) = self.modinfo(&self.files[c]) else {
                continue;
            };
            if info.iter().any(|(k, v)| k == "alias" && v == alias) {
                return Provider::Module(c.clone());
            }
        }
        Provider::Unknown
    }

    fn modinfo(&self, rel: &Path) -> Result<Vec<(String, String)>> {
        let path = self.root.join(rel);
        let file_name = rel.file_name().unwrap_or_default().to_string_lossy();
        let (_, codec) = module_name(&file_name).unwrap_or_default();
        let bytes = read_module(&path, codec)?;
        elf::modinfo(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// A module built for another release would be refused by the guest's kernel; say so now.
    fn check_vermagic(&self, name: &str, info: &[(String, String)]) -> Result<()> {
        let Some((_, vermagic)) = info.iter().find(|(k, _)| k == "vermagic") else {
            return Ok(());
        };
        let built_for = vermagic.split_whitespace().next().unwrap_or_default();
        if built_for != self.release {
            bail!(
                "module {name} is built for kernel {built_for}, but the tree is {} ({}); \
                 give --modules the lib/modules directory of the same build as --kernel",
                self.release,
                self.root.display()
            );
        }
        Ok(())
    }
}

fn index(root: &Path, rel: &Path, out: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for entry in fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let name = entry.file_name();
        let rel = rel.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            index(root, &rel, out)?;
        } else if let Some((module, _)) = module_name(&name.to_string_lossy()) {
            // Like depmod, the first of two same-named modules (updates/ before kernel/) wins.
            out.entry(module).or_insert(rel);
        }
    }
    Ok(())
}

enum Provider {
    Builtin,
    Module(String),
    Unknown,
}

/// The `pre:` names of a `softdep=` value: "pre: a b post: c" gives a and b.
fn softdep_pre(v: &str) -> Vec<String> {
    let mut pre = false;
    let mut out = Vec::new();
    for word in v.split_whitespace() {
        match word {
            "pre:" => pre = true,
            "post:" => pre = false,
            w if pre => out.push(w.to_owned()),
            _ => {}
        }
    }
    out
}

/// `modules.dep`: "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko".
pub fn parse_modules_dep(text: &str) -> BTreeMap<String, Vec<String>> {
    let name_of = |path: &str| {
        let file = path.rsplit('/').next().unwrap_or(path);
        module_name(file).map(|(n, _)| n)
    };
    text.lines()
        .filter_map(|line| {
            let (module, deps) = line.split_once(':')?;
            let deps = deps.split_whitespace().filter_map(name_of).collect();
            Some((name_of(module.trim())?, deps))
        })
        .collect()
}

/// Load order for `wanted`: every module after all of its dependencies, each once.
/// `deps(name)` gives a module's dependencies, None for a built-in one (nothing to load), or an
/// error for an unknown one. A dependency cycle is an error (the kernel could not load it either).
pub fn closure(
    wanted: &[String],
    mut deps: impl FnMut(&str) -> Result<Option<Vec<String>>>,
) -> Result<Vec<String>> {
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        name: &str,
        deps: &mut dyn FnMut(&str) -> Result<Option<Vec<String>>>,
        marks: &mut BTreeMap<String, Mark>,
        order: &mut Vec<String>,
        chain: &mut Vec<String>,
    ) -> Result<()> {
        match marks.get(name) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                bail!("module dependency cycle: {} -> {name}", chain.join(" -> "))
            }
            None => {}
        }
        marks.insert(name.to_owned(), Mark::Visiting);
        chain.push(name.to_owned());
        let needs = deps(name)?;
        if let Some(needs) = &needs {
            for d in needs {
                visit(d, deps, marks, order, chain)?;
            }
        }
        chain.pop();
        marks.insert(name.to_owned(), Mark::Done);
        if needs.is_some() {
            order.push(name.to_owned());
        }
        Ok(())
    }
    let mut marks = BTreeMap::new();
    let mut order = Vec::new();
    for w in wanted {
        visit(w, &mut deps, &mut marks, &mut order, &mut Vec::new())?;
    }
    Ok(order)
}

/// The module's ELF bytes, decompressed with the host's tool when needed (kernels since 5.17 can
/// decompress in `finit_module`, but busybox's insmod does not ask them to).
pub fn read_module(path: &Path, codec: Codec) -> Result<Vec<u8>> {
    let Some((tool, package)) = codec.tool() else {
        return fs::read(path).with_context(|| format!("reading {}", path.display()));
    };
    let mut child = Command::new(tool)
        .args(["-d", "-c"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot run `{tool}` to decompress {}; install it: apt-get install {package}",
                path.display()
            )
        })?;
    let mut bytes = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut bytes)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "`{tool} -d -c {}` failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps_from(
        map: &[(&str, &[&str])],
        builtin: &[&str],
    ) -> impl FnMut(&str) -> Result<Option<Vec<String>>> {
        let map: BTreeMap<String, Vec<String>> = map
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        let builtin: BTreeSet<String> = builtin.iter().map(|s| s.to_string()).collect();
        move |name| {
            if builtin.contains(name) {
                return Ok(None);
            }
            map.get(name)
                .cloned()
                .map(Some)
                .with_context(|| format!("unknown module {name}"))
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_modules_like_the_kernel() {
        assert_eq!(
            module_name("crc32c-generic.ko"),
            Some(("crc32c_generic".into(), Codec::None))
        );
        assert_eq!(module_name("ext4.ko.xz"), Some(("ext4".into(), Codec::Xz)));
        assert_eq!(
            module_name("loop.ko.zst"),
            Some(("loop".into(), Codec::Zstd))
        );
        assert_eq!(
            module_name("minix.ko.gz"),
            Some(("minix".into(), Codec::Gzip))
        );
        assert_eq!(module_name("modules.dep"), None);
        assert_eq!(module_name("ext4.ko.bak"), None);
    }

    #[test]
    fn compressed_modules_are_decompressed_for_the_guest() {
        let dir = std::env::temp_dir().join(format!("xtask-vm-modxz-{}", std::process::id()));
        let root = dir.join("6.12.0-test");
        let _ = fs::remove_dir_all(&dir);
        let ko = root.join("kernel/drivers/block/loop.ko");
        fs::create_dir_all(ko.parent().expect("parent")).expect("mkdir");
        let plain = elf::tests::fake_module(&["depends=", "vermagic=6.12.0-test SMP"]);
        fs::write(&ko, &plain).expect("write");
        let status = Command::new("xz").arg(&ko).status().expect("xz runs");
        assert!(status.success());
        let tree = ModuleTree::open(&root).expect("tree");
        let (files, _) = tree.load_order(&names(&["loop"])).expect("order");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].codec, Codec::Xz);
        assert_eq!(
            files[0].guest_path,
            "lib/modules/6.12.0-test/kernel/drivers/block/loop.ko"
        );
        assert_eq!(
            read_module(&files[0].source, files[0].codec).expect("read"),
            plain
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn reads_soft_dependencies() {
        assert_eq!(softdep_pre("pre: crypto-crc32c"), names(&["crypto-crc32c"]));
        assert_eq!(softdep_pre("pre: a b post: c"), names(&["a", "b"]));
        assert!(softdep_pre("post: c").is_empty());
    }

    #[test]
    fn parses_modules_dep() {
        let text = "kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz\n\
                    kernel/fs/jbd2/jbd2.ko.xz:\n\
                    kernel/drivers/block/loop.ko:\n";
        let m = parse_modules_dep(text);
        assert_eq!(m["ext4"], names(&["crc16", "mbcache", "jbd2"]));
        assert!(m["jbd2"].is_empty());
        assert!(m.contains_key("loop"));
    }

    #[test]
    fn orders_dependencies_first_each_once() {
        let map: &[(&str, &[&str])] = &[
            ("ext4", &["jbd2", "mbcache", "crc16"]),
            ("jbd2", &[]),
            ("mbcache", &[]),
            ("crc16", &[]),
            ("loop", &[]),
            ("minix", &[]),
            ("a", &["b", "c"]),
            ("b", &["c"]),
            ("c", &[]),
        ];
        let order =
            closure(&names(&["loop", "ext4", "minix"]), deps_from(map, &[])).expect("order");
        assert_eq!(
            order,
            names(&["loop", "jbd2", "mbcache", "crc16", "ext4", "minix"])
        );
        // A diamond: c before b before a, c once.
        let order = closure(&names(&["a", "c"]), deps_from(map, &[])).expect("order");
        assert_eq!(order, names(&["c", "b", "a"]));
    }

    #[test]
    fn leaves_out_builtin_modules() {
        let map: &[(&str, &[&str])] = &[("ext4", &["jbd2", "crc16"]), ("jbd2", &[])];
        let order = closure(
            &names(&["ext4", "loop"]),
            deps_from(map, &["crc16", "loop"]),
        )
        .expect("order");
        assert_eq!(order, names(&["jbd2", "ext4"]));
    }

    #[test]
    fn unknown_modules_and_cycles_are_errors() {
        let map: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["a"]), ("c", &["nope"])];
        let e = closure(&names(&["a"]), deps_from(map, &[])).expect_err("cycle");
        assert!(format!("{e}").contains("cycle: a -> b -> a"), "{e}");
        let e = closure(&names(&["c"]), deps_from(map, &[])).expect_err("unknown");
        assert!(format!("{e}").contains("nope"), "{e}");
    }

    #[test]
    fn tree_without_modules_dep_uses_modinfo() {
        let dir = std::env::temp_dir().join(format!("xtask-vm-modtree-{}", std::process::id()));
        let root = dir.join("6.1.0-test");
        let _ = fs::remove_dir_all(&dir);
        let write = |rel: &str, info: &[&str]| {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(p, elf::tests::fake_module(info)).expect("write");
        };
        let vm = "vermagic=6.1.0-test SMP mod_unload";
        write(
            "kernel/fs/ext4/ext4.ko",
            &["depends=jbd2,crc16", "softdep=pre: crypto-crc32c", vm],
        );
        write(
            "kernel/crypto/crc32c_generic.ko",
            &["alias=crypto-crc32c", "alias=crc32c", "depends=", vm],
        );
        write(
            "kernel/arch/x86/crypto/crc32c-intel.ko",
            &["alias=crypto-crc32c", "depends=", vm],
        );
        write(
            "kernel/fs/btrfs/btrfs.ko",
            &["softdep=pre: crypto-blake9 post: xxhash", vm],
        );
        write("kernel/fs/jbd2/jbd2.ko", &["depends=", vm]);
        write("kernel/lib/crc16.ko", &["depends=", vm]);
        write(
            "kernel/drivers/block/loop.ko",
            &["depends=", "vermagic=5.10.0 SMP"],
        );
        fs::write(root.join("modules.builtin"), "kernel/fs/minix/minix.ko\n").expect("write");
        let tree = ModuleTree::open(&root).expect("tree");
        let (files, notes) = tree.load_order(&names(&["ext4", "minix"])).expect("order");
        let got: Vec<(&str, &str)> = files
            .iter()
            .map(|f| (f.name.as_str(), f.guest_path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "crc32c_generic",
                    "lib/modules/6.1.0-test/kernel/crypto/crc32c_generic.ko"
                ),
                ("jbd2", "lib/modules/6.1.0-test/kernel/fs/jbd2/jbd2.ko"),
                ("crc16", "lib/modules/6.1.0-test/kernel/lib/crc16.ko"),
                ("ext4", "lib/modules/6.1.0-test/kernel/fs/ext4/ext4.ko"),
            ]
        );
        assert!(notes.is_empty(), "{notes:?}");
        // An unresolvable soft dependency is a note, not an error.
        let (files, notes) = tree.load_order(&names(&["btrfs"])).expect("order");
        assert_eq!(files.len(), 1);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("crypto-blake9"), "{notes:?}");
        let e = tree.load_order(&names(&["loop"])).expect_err("vermagic");
        assert!(format!("{e}").contains("built for kernel 5.10.0"), "{e}");
        let e = tree.load_order(&names(&["xfs"])).expect_err("unknown");
        assert!(format!("{e}").contains("xfs"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }
}
