//! Records the git commit the binary is built from, for `--version`: `RELAY_GIT_COMMIT` from the
//! environment when set (a container build, which has no `.git`), else git's answer, with
//! `-dirty` when the tree has uncommitted changes; `unknown` outside a checkout (a crate tarball).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=RELAY_GIT_COMMIT");
    let given = std::env::var("RELAY_GIT_COMMIT").ok().filter(|c| !c.trim().is_empty());
    let commit = match given.or_else(|| git(&["rev-parse", "--short=12", "HEAD"])) {
        Some(commit) if !commit.is_empty() => {
            let dirty =
                git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            format!("{commit}{}", if dirty { "-dirty" } else { "" })
        }
        _ => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=RELAY_GIT_COMMIT={commit}");
    // Built again when the checked-out commit moves (a commit, a checkout, a pull).
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for path in ["HEAD", "refs/heads", "packed-refs", "index"] {
            println!("cargo:rerun-if-changed={dir}/{path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
