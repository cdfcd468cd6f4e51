//! What the target kernel's BTF says: struct offsets for the programs, and which functions
//! exist with how many arguments. Nothing here is compiled in; layouts differ between kernels.
use std::path::Path;

use btfparse::{ErrorKind, Offset, Readable, TypeInformation, TypeVariant};
use tracer_common::Offsets;

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read BTF from {path}: {msg} (the kernel needs CONFIG_DEBUG_INFO_BTF=y)")]
    Read { path: String, msg: String },
    #[error("BTF has no type `{0}`")]
    NoType(String),
    #[error("BTF type `{ty}` has no member `{path}`: {msg}")]
    NoMember {
        ty: String,
        path: String,
        msg: String,
    },
    #[error("BTF member `{ty}.{path}` is a bitfield; expected a byte-aligned field")]
    Bitfield { ty: String, path: String },
    #[error("aya cannot parse the BTF in {path}: {source}")]
    Aya { path: String, source: aya::BtfError },
}

/// The parsed type information of one kernel.
pub struct KernelBtf {
    types: TypeInformation,
}

/// Where the running kernel publishes its BTF.
pub const SYS_BTF: &str = "/sys/kernel/btf/vmlinux";

impl KernelBtf {
    pub fn from_file(path: &Path) -> Result<KernelBtf, BtfError> {
        KernelBtf::parse(path, &read(path)?)
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<KernelBtf, BtfError> {
        let types = TypeInformation::new(&Bytes(bytes)).map_err(|e| BtfError::Read {
            path: path.display().to_string(),
            msg: e.message().into(),
        })?;
        Ok(KernelBtf { types })
    }

    /// The file read once and parsed twice at the same time: here (offsets, functions) and by
    /// aya (loading the programs), which cannot give its types back. Each parse of a kernel's
    /// BTF takes seconds in a TCG guest; on two threads the second costs nothing more.
    pub fn parse_both(path: &Path) -> Result<(KernelBtf, aya::Btf), BtfError> {
        let bytes = read(path)?;
        std::thread::scope(|s| {
            let aya = s.spawn(|| aya::Btf::parse(&bytes, aya::Endianness::default()));
            let ours = KernelBtf::parse(path, &bytes);
            let aya = aya.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            let aya = aya.map_err(|source| BtfError::Aya {
                path: path.display().to_string(),
                source,
            })?;
            Ok((ours?, aya))
        })
    }

    /// Byte offset of `path` (dotted, through anonymous members) inside struct `ty`.
    pub fn offset(&self, ty: &str, path: &str) -> Result<u32, BtfError> {
        let tid = self
            .types
            .id_of(ty)
            .ok_or_else(|| BtfError::NoType(ty.into()))?;
        match self.types.offset_of(tid, path) {
            Ok((_, Offset::ByteOffset(off))) => Ok(off),
            Ok((_, Offset::BitOffsetAndSize(..))) => Err(BtfError::Bitfield {
                ty: ty.into(),
                path: path.into(),
            }),
            Err(e) => Err(BtfError::NoMember {
                ty: ty.into(),
                path: path.into(),
                msg: e.message().into(),
            }),
        }
    }

    /// The offsets the programs need (see [`Offsets`]). Any layout will do: whether the kprobe
    /// programs may read a head in one go is [`Offsets::check_windows`]'s call.
    pub fn offsets(&self) -> Result<Offsets, BtfError> {
        let o = Offsets {
            d_flags: self.offset("dentry", "d_flags")?,
            d_seq: self.offset("dentry", "d_seq")?,
            d_hash_pprev: self.offset("dentry", "d_hash.pprev")?,
            d_parent: self.offset("dentry", "d_parent")?,
            d_name: self.offset("dentry", "d_name")?,
            d_inode: self.offset("dentry", "d_inode")?,
            d_sb: self.offset("dentry", "d_sb")?,
            qstr_hash: self.offset("qstr", "hash")?,
            qstr_len: self.offset("qstr", "len")?,
            qstr_name: self.offset("qstr", "name")?,
            sb_s_dev: self.offset("super_block", "s_dev")?,
            _pad: 0,
        };
        Ok(o)
    }

    /// Number of parameters of function `name`, or None when BTF has no such FUNC (not built
    /// in, or inlined everywhere so it has no out-of-line body to trace).
    pub fn func_args(&self, name: &str) -> Option<usize> {
        let tid = self.types.id_of(name)?;
        let TypeVariant::Func(func) = self.types.from_id(tid)? else {
            return None;
        };
        match self.types.from_id(*func.prototype_tid())? {
            TypeVariant::FuncProto(proto) => Some(proto.parameter_list().len()),
            _ => None,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, BtfError> {
    std::fs::read(path).map_err(|e| BtfError::Read {
        path: path.display().to_string(),
        msg: e.to_string(),
    })
}

/// BTF bytes in memory (the kernel's BTF is a few MiB; reading it once beats many small reads).
struct Bytes<'a>(&'a [u8]);

impl Readable for Bytes<'_> {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match self.0.get(start..).and_then(|s| s.get(..buffer.len())) {
            Some(src) => {
                buffer.copy_from_slice(src);
                Ok(())
            }
            None => Err(btfparse::Error::new(
                ErrorKind::InvalidOffset,
                "read past the end of the BTF data",
            )),
        }
    }
}
