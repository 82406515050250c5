//! Reading the ssconf files (`/var/lib/ganeti/ssconf_<key>`), the small
//! per-key copies of the configuration that every node keeps.

use std::io;
use std::path::PathBuf;

use crate::paths::Paths;

/// Longest ssconf file read (2.5.2's `_MAX_SIZE`).
pub const MAX_SSCONF_SIZE: u64 = 128 * 1024;

/// An ssconf file that could not be read.
#[derive(Debug)]
pub enum SsconfError {
    Io(PathBuf, io::Error),
    TooLarge(PathBuf),
}

impl std::fmt::Display for SsconfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SsconfError::Io(p, e) => {
                write!(f, "Can't read from the ssconf file {}: {e}", p.display())
            }
            SsconfError::TooLarge(p) => write!(
                f,
                "ssconf file {} is larger than {MAX_SSCONF_SIZE} bytes",
                p.display()
            ),
        }
    }
}

/// The content of one ssconf key, without the trailing newline.
pub fn read(paths: &Paths, key: &str) -> Result<String, SsconfError> {
    use std::io::Read;
    let path = paths.ssconf_file(key);
    let file = std::fs::File::open(&path).map_err(|e| SsconfError::Io(path.clone(), e))?;
    let mut text = String::new();
    file.take(MAX_SSCONF_SIZE + 1)
        .read_to_string(&mut text)
        .map_err(|e| SsconfError::Io(path.clone(), e))?;
    if text.len() as u64 > MAX_SSCONF_SIZE {
        return Err(SsconfError::TooLarge(path));
    }
    Ok(text.trim_end_matches('\n').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_limits() {
        let root = std::env::temp_dir().join(format!("ganeti-ssconf-{}", std::process::id()));
        let paths = Paths::with_root(&root);
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        assert!(matches!(
            read(&paths, "master_node"),
            Err(SsconfError::Io(..))
        ));
        std::fs::write(paths.ssconf_file("master_node"), "node1.example.com\n").unwrap();
        assert_eq!(read(&paths, "master_node").unwrap(), "node1.example.com");
        let fits = "a".repeat(MAX_SSCONF_SIZE as usize);
        std::fs::write(paths.ssconf_file("node_list"), &fits).unwrap();
        assert_eq!(read(&paths, "node_list").unwrap().len(), fits.len());
        std::fs::write(paths.ssconf_file("node_list"), format!("{fits}a")).unwrap();
        assert!(matches!(
            read(&paths, "node_list"),
            Err(SsconfError::TooLarge(_))
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
