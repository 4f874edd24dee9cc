//! Readers for the interaction file formats people have: MovieLens (`u.data`, `ratings.dat`,
//! `ratings.csv`), any delimited `user,item[,rating[,timestamp]]` file, and the adjacency lists of the
//! NGCF / LightGCN releases. A malformed line is an error naming the file and line number.

use std::collections::HashMap;
use std::path::Path;

use super::FileConfig;
use crate::error::DataError;

/// One interaction with dense ids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    pub user: u32,
    pub item: u32,
    pub timestamp: Option<i64>,
}

/// Interactions as read, before splitting.
#[derive(Debug)]
pub enum RawSplit {
    /// One file: split by `[domain].split`.
    Single(Vec<Record>),
    /// Given train / valid / test files.
    Given {
        train: Vec<Record>,
        valid: Vec<Record>,
        test: Vec<Record>,
    },
}

#[derive(Debug)]
pub struct RawData {
    pub n_users: usize,
    pub n_items: usize,
    pub split: RawSplit,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Movielens,
    Delimited,
    Adjacency,
}

/// Dense ids in order of first appearance.
#[derive(Default)]
struct Interner(HashMap<String, u32>);

impl Interner {
    fn id(&mut self, key: &str) -> u32 {
        let next = self.0.len() as u32;
        *self.0.entry(key.to_string()).or_insert(next)
    }
}

struct Reader<'a> {
    config: &'a FileConfig,
    format: Format,
    users: Interner,
    items: Interner,
}

pub fn load_files(config: &FileConfig, format: Format) -> Result<RawData, DataError> {
    let mut r = Reader {
        config,
        format,
        users: Interner::default(),
        items: Interner::default(),
    };
    let split = if let Some(train) = &config.train {
        let test = config.test.as_ref().ok_or_else(|| DataError::Invalid {
            what: format!("data file {}", train.display()),
            message: "a `train` file needs a `test` file beside it".into(),
        })?;
        let train = r.read(train)?;
        let valid = match &config.valid {
            Some(v) => r.read(v)?,
            None => Vec::new(),
        };
        let test = r.read(test)?;
        RawSplit::Given { train, valid, test }
    } else {
        let path = config.path.as_ref().ok_or_else(|| DataError::Invalid {
            what: "data".into(),
            message: "give either `path` or `train` + `test`".into(),
        })?;
        RawSplit::Single(r.read(path)?)
    };
    Ok(RawData {
        n_users: r.users.0.len(),
        n_items: r.items.0.len(),
        split,
    })
}

/// How one delimited file is laid out.
struct Layout {
    delimiter: String,
    header: bool,
}

impl Reader<'_> {
    fn read(&mut self, path: &Path) -> Result<Vec<Record>, DataError> {
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut out = Vec::new();
        match self.format {
            Format::Adjacency => self.read_adjacency(path, &text, &mut out)?,
            Format::Movielens => {
                let layout = movielens_layout(path, &text);
                self.read_delimited(path, &text, &layout, &mut out)?
            }
            Format::Delimited => {
                let layout = Layout {
                    delimiter: unescape(self.config.delimiter.as_deref().unwrap_or(",")),
                    header: self.config.header.unwrap_or(false),
                };
                self.read_delimited(path, &text, &layout, &mut out)?
            }
        }
        Ok(out)
    }

    fn read_delimited(
        &mut self,
        path: &Path,
        text: &str,
        layout: &Layout,
        out: &mut Vec<Record>,
    ) -> Result<(), DataError> {
        let bad = |line: usize, message: String| DataError::Line {
            path: path.to_path_buf(),
            line,
            message,
        };
        let delim = layout.delimiter.as_str();
        for (n, line) in text.lines().enumerate().skip(usize::from(layout.header)) {
            let line_no = n + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = if delim == " " {
                line.split_whitespace().collect()
            } else {
                line.split(delim).map(str::trim).collect()
            };
            if fields.len() < 2 || fields[0].is_empty() || fields[1].is_empty() {
                return Err(bad(
                    line_no,
                    format!(
                        "expected `user{d}item[{d}rating[{d}timestamp]]` separated by {delim:?}, got {line:?}",
                        d = delim
                    ),
                ));
            }
            let rating = match fields.get(2) {
                Some(s) if !s.is_empty() => Some(
                    s.parse::<f64>()
                        .map_err(|_| bad(line_no, format!("rating {s:?} is not a number")))?,
                ),
                _ => None,
            };
            let timestamp = match fields.get(3) {
                Some(s) if !s.is_empty() => Some(s.parse::<i64>().map_err(|_| {
                    bad(
                        line_no,
                        format!("timestamp {s:?} is not an integer (seconds)"),
                    )
                })?),
                _ => None,
            };
            if let Some(min) = self.config.min_rating {
                match rating {
                    None => {
                        return Err(bad(
                            line_no,
                            "`min_rating` is set but this line has no rating column".into(),
                        ))
                    }
                    Some(r) if r < min => continue,
                    _ => {}
                }
            }
            let user = self.users.id(fields[0]);
            let item = self.items.id(fields[1]);
            out.push(Record {
                user,
                item,
                timestamp,
            });
        }
        Ok(())
    }

    fn read_adjacency(
        &mut self,
        path: &Path,
        text: &str,
        out: &mut Vec<Record>,
    ) -> Result<(), DataError> {
        for (n, line) in text.lines().enumerate() {
            let mut fields = line.split_whitespace();
            let Some(user) = fields.next() else { continue };
            if user.parse::<i64>().is_err() {
                return Err(DataError::Line {
                    path: path.to_path_buf(),
                    line: n + 1,
                    message: format!(
                        "expected `user item item ...` with integer ids, got {user:?}"
                    ),
                });
            }
            let user = self.users.id(user);
            for item in fields {
                if item.parse::<i64>().is_err() {
                    return Err(DataError::Line {
                        path: path.to_path_buf(),
                        line: n + 1,
                        message: format!("item id {item:?} is not an integer"),
                    });
                }
                out.push(Record {
                    user,
                    item: self.items.id(item),
                    timestamp: None,
                });
            }
        }
        Ok(())
    }
}

/// MovieLens layouts by file name, else by the first line: `::` (ratings.dat), tab (u.data), comma
/// with a header (ratings.csv).
fn movielens_layout(path: &Path, text: &str) -> Layout {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let first = text.lines().next().unwrap_or("");
    if name.ends_with(".dat") || first.contains("::") {
        Layout {
            delimiter: "::".into(),
            header: false,
        }
    } else if name.ends_with(".csv") || (!first.contains('\t') && first.contains(',')) {
        let header = first
            .split(',')
            .next()
            .is_some_and(|f| f.trim().parse::<i64>().is_err());
        Layout {
            delimiter: ",".into(),
            header,
        }
    } else {
        Layout {
            delimiter: "\t".into(),
            header: false,
        }
    }
}

fn unescape(delimiter: &str) -> String {
    match delimiter {
        "\\t" | "tab" => "\t".into(),
        "space" | "whitespace" => " ".into(),
        d => d.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        p
    }

    fn single(raw: RawData) -> Vec<Record> {
        match raw.split {
            RawSplit::Single(r) => r,
            _ => panic!("expected one file"),
        }
    }

    #[test]
    fn reads_the_three_movielens_layouts_alike() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            write(dir.path(), "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t1\t5\n"),
            write(dir.path(), "ratings.dat", "196::242::3::881250949\n186::302::3::891717742\n196::302::1::5\n"),
            write(
                dir.path(),
                "ratings.csv",
                "userId,movieId,rating,timestamp\n196,242,3.0,881250949\n186,302,3.0,891717742\n196,302,1.0,5\n",
            ),
        ];
        for f in files {
            let config = FileConfig {
                path: Some(f.clone()),
                min_rating: Some(2.0),
                ..Default::default()
            };
            let raw = load_files(&config, Format::Movielens).unwrap();
            assert_eq!((raw.n_users, raw.n_items), (2, 2), "{}", f.display());
            let recs = single(raw);
            assert_eq!(recs.len(), 2, "the rating below min_rating is dropped");
            assert_eq!(
                recs[0],
                Record {
                    user: 0,
                    item: 0,
                    timestamp: Some(881250949)
                }
            );
        }
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "x.csv", "1,2,5\n3\n");
        let config = FileConfig {
            path: Some(f),
            ..Default::default()
        };
        let err = load_files(&config, Format::Delimited)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.csv:2:"), "{err}");
        let f = write(dir.path(), "y.csv", "1,2,five\n");
        let config = FileConfig {
            path: Some(f),
            ..Default::default()
        };
        let err = load_files(&config, Format::Delimited)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("y.csv:1:") && err.contains("not a number"),
            "{err}"
        );
    }

    #[test]
    fn reads_adjacency_lists_with_shared_ids_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let train = write(dir.path(), "train.txt", "0 10 11 12\n1 11\n");
        let test = write(dir.path(), "test.txt", "0 13\n1 10\n");
        let config = FileConfig {
            train: Some(train),
            test: Some(test),
            ..Default::default()
        };
        let raw = load_files(&config, Format::Adjacency).unwrap();
        assert_eq!((raw.n_users, raw.n_items), (2, 4));
        let RawSplit::Given { train, valid, test } = raw.split else {
            panic!()
        };
        assert_eq!(train.len(), 4);
        assert!(valid.is_empty());
        assert_eq!(
            test.iter().map(|r| (r.user, r.item)).collect::<Vec<_>>(),
            vec![(0, 3), (1, 0)]
        );
    }
}
