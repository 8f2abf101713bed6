//! `recheck keygen`: makes the ed25519 key pair Recheck signs completion
//! events with, in the PEM encodings other tools read.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

use recheck::attest::keys::SigningKey;

#[derive(Debug, Args)]
#[command(after_help = "\
Prints the key id (hex sha256 of the public key's SPKI DER): the `keyid` of every envelope signed with this key.
Example: recheck keygen --out /etc/recheck/ && recheck verify event.json --key /etc/recheck/recheck.pub.pem")]
pub struct KeygenArgs {
    /// Where to write the pair: an existing directory (gets `recheck.key.pem`
    /// and `recheck.pub.pem`) or a path prefix P (gets `P.key.pem` and
    /// `P.pub.pem`).
    #[arg(long, short = 'o', value_name = "DIR|PREFIX")]
    pub out: PathBuf,
    /// Replace existing key files (by default an existing file is an error).
    #[arg(long)]
    pub force: bool,
}

/// Writes the private key (PKCS#8 PEM, mode 0600, created that way so it is
/// never readable by others even briefly) and the public key (SPKI PEM).
pub fn run(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let (private_path, public_path) = key_paths(&args.out);
    for path in [&private_path, &public_path] {
        if path.exists() {
            if !args.force {
                bail!("{} exists (use --force to replace it)", path.display());
            }
            fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let key = SigningKey::generate()?;
    let private_pem = key.to_pkcs8_pem()?;
    write_new(&private_path, private_pem.as_bytes(), 0o600)?;
    write_new(&public_path, key.public_key().to_pem().as_bytes(), 0o644)?;
    println!("keyid: {}", key.keyid());
    println!("private key: {} (mode 0600)", private_path.display());
    println!("public key: {}", public_path.display());
    Ok(ExitCode::SUCCESS)
}

fn key_paths(out: &Path) -> (PathBuf, PathBuf) {
    if out.is_dir() {
        (out.join("recheck.key.pem"), out.join("recheck.pub.pem"))
    } else {
        let with = |suffix: &str| {
            let mut name = out.as_os_str().to_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };
        (with(".key.pem"), with(".pub.pem"))
    }
}

pub(super) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
