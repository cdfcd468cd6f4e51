//! What the guest sends back: one frame, `XTASKVM1 <tar|tar.gz> <size> <sha256>\n` then the
//! archive, written by guest/init.sh to the virtio disk or the second serial port. The archive
//! holds `out/` (the tracer's output directory) and `vm/facts` (what the init found).
use std::{
    fs,
    io::{Read, Seek, SeekFrom},
    path::{Component, Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::digest::hex;

const MAGIC: &str = "XTASKVM1";

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Encoding {
    Tar,
    TarGz,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    pub encoding: Encoding,
    pub size: u64,
    pub sha256: String,
}

/// Parses the header line (without its newline).
pub fn parse_header(line: &str) -> Result<Header> {
    let f: Vec<&str> = line.split(' ').collect();
    let [magic, enc, size, sum] = f.as_slice() else {
        bail!("malformed transfer header {line:?}");
    };
    if *magic != MAGIC {
        bail!("malformed transfer header {line:?}");
    }
    let encoding = match *enc {
        "tar" => Encoding::Tar,
        "tar.gz" => Encoding::TarGz,
        other => bail!("unknown transfer encoding {other:?}"),
    };
    let size = size
        .parse()
        .with_context(|| format!("bad size in transfer header {line:?}"))?;
    if sum.len() != 64 || !sum.bytes().all(|c| c.is_ascii_hexdigit()) {
        bail!("bad checksum in transfer header {line:?}");
    }
    Ok(Header {
        encoding,
        size,
        sha256: sum.to_ascii_lowercase(),
    })
}

/// Reads the frame at the start of `path` (a disk image or a serial capture). None when the
/// guest wrote nothing there; an error when it wrote a frame that is cut short or corrupt.
pub fn read_frame(path: &Path) -> Result<Option<(Encoding, Vec<u8>)>> {
    let mut f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut head = [0u8; 256];
    let n = read_up_to(&mut f, &mut head)?;
    let head = &head[..n];
    if !head.starts_with(MAGIC.as_bytes()) {
        return Ok(None);
    }
    let Some(nl) = head.iter().position(|&c| c == b'\n') else {
        bail!("transfer header in {} has no end", path.display());
    };
    let header = parse_header(&String::from_utf8_lossy(&head[..nl]))?;
    f.seek(SeekFrom::Start(nl as u64 + 1))?;
    let mut payload = Vec::new();
    f.take(header.size).read_to_end(&mut payload)?;
    if (payload.len() as u64) < header.size {
        bail!(
            "transfer cut short: {} of {} bytes arrived in {}",
            payload.len(),
            header.size,
            path.display()
        );
    }
    let sum = hex(&Sha256::digest(&payload));
    if sum != header.sha256 {
        bail!("transfer corrupt: checksum mismatch in {}", path.display());
    }
    Ok(Some((header.encoding, payload)))
}

fn read_up_to(f: &mut fs::File, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// What the archive held: where `out/` went, and the facts file's text.
pub struct Unpacked {
    pub facts: String,
    pub files: Vec<PathBuf>,
}

/// Unpacks `out/` of the archive into `dest` (which must exist) and returns `vm/facts`.
pub fn unpack(encoding: Encoding, payload: &[u8], dest: &Path) -> Result<Unpacked> {
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Tar => Box::new(payload),
        Encoding::TarGz => Box::new(flate2::read::GzDecoder::new(payload)),
    };
    let mut archive = tar::Archive::new(reader);
    let mut facts = String::new();
    let mut files = Vec::new();
    for entry in archive.entries().context("reading the transfer archive")? {
        let mut entry = entry.context("reading the transfer archive")?;
        let path = entry.path()?.into_owned();
        let rel = clean(&path)
            .with_context(|| format!("unsafe path {} in the transfer archive", path.display()))?;
        if rel == Path::new("vm/facts") {
            entry.read_to_string(&mut facts)?;
        } else if let Ok(inside) = rel.strip_prefix("out") {
            if inside.as_os_str().is_empty() {
                continue;
            }
            let target = dest.join(inside);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            entry
                .unpack(&target)
                .with_context(|| format!("unpacking {}", target.display()))?;
            if entry.header().entry_type().is_file() {
                files.push(inside.to_owned());
            }
        }
    }
    Ok(Unpacked { facts, files })
}

/// The path without `.` parts; None when it leaves its root (absolute, `..`).
fn clean(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// `key=value` lines the guest's init wrote.
#[derive(Debug, Default, PartialEq)]
pub struct Facts {
    pub release: String,
    pub btf: Option<bool>,
    pub kprobes: Option<bool>,
    pub module_error: Option<String>,
    pub tracer_exit: Option<i32>,
    pub uptime_init: Option<f64>,
    pub uptime_tracer_start: Option<f64>,
    pub uptime_tracer_end: Option<f64>,
}

pub fn parse_facts(text: &str) -> Facts {
    let mut f = Facts::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k {
            "release" => f.release = v.to_owned(),
            "btf" => f.btf = Some(v == "yes"),
            "kprobes" => f.kprobes = Some(v == "yes"),
            "module_error" => f.module_error = Some(v.to_owned()),
            "tracer_exit" => f.tracer_exit = v.parse().ok(),
            "uptime_init" => f.uptime_init = v.parse().ok(),
            "uptime_tracer_start" => f.uptime_tracer_start = v.parse().ok(),
            "uptime_tracer_end" => f.uptime_tracer_end = v.parse().ok(),
            _ => {}
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn archive(gz: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, data).expect("append");
        };
        add(
            "vm/facts",
            b"release=6.1.0\nbtf=yes\nkprobes=yes\ntracer_exit=0\nuptime_init=2.5\n",
        );
        add("out/tracer.stdout", b"{}\n");
        add("out/sub/kernel.trace", b"TRACE");
        let tar = b.into_inner().expect("tar");
        if !gz {
            return tar;
        }
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&tar).expect("gz");
        z.finish().expect("gz")
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-vm-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("mkdir");
        d
    }

    fn frame(enc: &str, payload: &[u8], declared: usize) -> Vec<u8> {
        let mut v = format!(
            "{MAGIC} {enc} {declared} {}\n",
            hex(&Sha256::digest(payload))
        )
        .into_bytes();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn header_round_trip_and_errors() {
        let sum = "ab".repeat(32);
        let h = parse_header(&format!("XTASKVM1 tar.gz 123 {sum}")).expect("header");
        assert_eq!(
            h,
            Header {
                encoding: Encoding::TarGz,
                size: 123,
                sha256: sum.clone()
            }
        );
        assert!(parse_header("XTASKVM1 zip 1 00").is_err());
        assert!(parse_header(&format!("XTASKVM2 tar 1 {sum}")).is_err());
        assert!(parse_header(&format!("XTASKVM1 tar x {sum}")).is_err());
        assert!(parse_header("XTASKVM1 tar 1").is_err());
    }

    #[test]
    fn decodes_both_encodings() {
        for (gz, enc) in [(false, "tar"), (true, "tar.gz")] {
            let dir = tmp(enc);
            let payload = archive(gz);
            // A disk image: the frame, then zeros to the end of the disk.
            let mut disk = frame(enc, &payload, payload.len());
            disk.resize(disk.len() + 4096, 0);
            fs::write(dir.join("disk.img"), &disk).expect("write");
            let (e, p) = read_frame(&dir.join("disk.img"))
                .expect("read")
                .expect("frame");
            let out = dir.join("out");
            fs::create_dir_all(&out).expect("mkdir");
            let u = unpack(e, &p, &out).expect("unpack");
            let facts = parse_facts(&u.facts);
            assert_eq!(facts.release, "6.1.0");
            assert_eq!(
                (facts.btf, facts.kprobes, facts.tracer_exit),
                (Some(true), Some(true), Some(0))
            );
            assert_eq!(facts.uptime_init, Some(2.5));
            assert_eq!(
                fs::read(out.join("sub/kernel.trace")).expect("trace"),
                b"TRACE"
            );
            assert_eq!(
                u.files,
                vec![
                    PathBuf::from("tracer.stdout"),
                    PathBuf::from("sub/kernel.trace")
                ]
            );
            let _ = fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn nothing_sent_short_and_corrupt() {
        let dir = tmp("bad");
        fs::write(dir.join("empty"), vec![0u8; 512]).expect("write");
        assert!(read_frame(&dir.join("empty")).expect("read").is_none());
        assert!(read_frame(&dir.join("missing")).expect("read").is_none());
        let payload = archive(true);
        fs::write(
            dir.join("short"),
            frame("tar.gz", &payload, payload.len() + 10),
        )
        .expect("write");
        let e = read_frame(&dir.join("short")).expect_err("short");
        assert!(format!("{e}").contains("cut short"), "{e}");
        let mut bad = frame("tar.gz", &payload, payload.len());
        let last = bad.len() - 1;
        bad[last] ^= 1;
        fs::write(dir.join("corrupt"), bad).expect("write");
        let e = read_frame(&dir.join("corrupt")).expect_err("corrupt");
        assert!(format!("{e}").contains("checksum"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_paths_outside() {
        assert_eq!(clean(Path::new("./out/a")), Some(PathBuf::from("out/a")));
        assert_eq!(clean(Path::new("out/../../etc/passwd")), None);
        assert_eq!(clean(Path::new("/etc/passwd")), None);
    }
}
