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
    pub n_queries: usize,
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
    fn id(&mut self, key: &str) -> Option<u32> {
        let next = u32::try_from(self.0.len()).ok()?;
        Some(*self.0.entry(key.to_string()).or_insert(next))
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
        n_queries: r.users.0.len(),
        n_items: r.items.0.len(),
        split,
    })
}

/// What a column of a delimited file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    User,
    Item,
    Rating,
    Timestamp,
    Ignored,
}

/// Names `columns` may use.
pub const COLUMN_NAMES: &str = "`user`, `item`, `rating`, `timestamp` or `-` (ignored)";

fn column(name: &str) -> Option<Column> {
    Some(match name {
        "user" => Column::User,
        "item" => Column::Item,
        "rating" => Column::Rating,
        "timestamp" => Column::Timestamp,
        "-" | "_" | "ignore" => Column::Ignored,
        _ => return None,
    })
}

/// How one delimited file is laid out.
struct Layout {
    delimiter: String,
    header: bool,
    /// The columns every line has; None: fixed by the first data line (2, 3 or 4 fields:
    /// user, item, rating, timestamp).
    columns: Option<Vec<Column>>,
    /// Where the layout came from, for messages.
    source: String,
}

/// Text shown from a bad line: at most 60 characters.
fn shown(line: &str) -> String {
    let mut chars = line.chars();
    let head: String = chars.by_ref().take(60).collect();
    if chars.next().is_some() {
        format!("{head:?}… ({} characters)", line.chars().count())
    } else {
        format!("{head:?}")
    }
}

impl Reader<'_> {
    fn read(&mut self, path: &Path) -> Result<Vec<Record>, DataError> {
        let text = read_text(path)?;
        let mut out = Vec::new();
        match self.format {
            Format::Adjacency => self.read_adjacency(path, &text, &mut out)?,
            Format::Movielens => {
                let layout = movielens_layout(path, &text);
                self.read_delimited(path, &text, &layout, &mut out)?
            }
            Format::Delimited => {
                let columns = match &self.config.columns {
                    None => None,
                    Some(names) => Some(
                        names
                            .iter()
                            .map(|n| {
                                column(n).ok_or_else(|| DataError::Invalid {
                                    what: format!("data file {}", path.display()),
                                    message: format!(
                                        "`columns` names {n:?}; allowed: {COLUMN_NAMES}"
                                    ),
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                };
                let layout = Layout {
                    delimiter: unescape(self.config.delimiter.as_deref().unwrap_or(",")),
                    header: self.config.header.unwrap_or(false),
                    columns,
                    source: "`columns`".into(),
                };
                self.read_delimited(path, &text, &layout, &mut out)?
            }
        }
        if out.is_empty() {
            let after = self
                .config
                .min_rating
                .map(|m| format!(" (after min_rating = {m})"))
                .unwrap_or_default();
            return Err(DataError::Invalid {
                what: format!("data file {}", path.display()),
                message: format!("no interactions in the file{after}"),
            });
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
        let (mut columns, mut source) = (layout.columns.clone(), layout.source.clone());
        let mut header_pending = layout.header;
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            if header_pending {
                header_pending = false;
                continue;
            }
            let fields: Vec<&str> = if delim == " " {
                line.split_whitespace().collect()
            } else {
                line.split(delim).map(str::trim).collect()
            };
            let cols = match &columns {
                Some(c) => c,
                None => {
                    let inferred = match fields.len() {
                        2 => vec![Column::User, Column::Item],
                        3 => vec![Column::User, Column::Item, Column::Rating],
                        4 => vec![
                            Column::User,
                            Column::Item,
                            Column::Rating,
                            Column::Timestamp,
                        ],
                        1 => {
                            return Err(bad(
                                line_no,
                                format!(
                                "one field, {}, but the format needs at least `user{delim}item` \
                                     separated by {delim:?}",
                                shown(line)
                            ),
                            ))
                        }
                        n => {
                            return Err(bad(
                                line_no,
                                format!(
                                "{n} fields: name them with `columns` (e.g. [\"user\", \"item\", \
                                     \"rating\", \"timestamp\", \"-\"]; allowed: {COLUMN_NAMES})"
                            ),
                            ))
                        }
                    };
                    source = format!("line {line_no}");
                    columns.insert(inferred)
                }
            };
            if fields.len() != cols.len() {
                return Err(bad(
                    line_no,
                    format!(
                        "{} fields, but the file's layout (from {source}) has {}: {}; got {}",
                        fields.len(),
                        cols.len(),
                        layout_names(cols, delim),
                        shown(line)
                    ),
                ));
            }
            let (mut user, mut item, mut rating, mut timestamp) = (None, None, None, None);
            for (&c, &f) in cols.iter().zip(&fields) {
                match c {
                    Column::User => user = Some(f),
                    Column::Item => item = Some(f),
                    Column::Rating => rating = Some(f),
                    Column::Timestamp => timestamp = Some(f),
                    Column::Ignored => {}
                }
            }
            let (Some(user), Some(item)) = (user, item) else {
                return Err(bad(
                    line_no,
                    format!("the layout ({source}) has no `user` or no `item` column"),
                ));
            };
            if user.is_empty() || item.is_empty() {
                return Err(bad(
                    line_no,
                    format!("an empty user or item id in {}", shown(line)),
                ));
            }
            let rating = rating.map(|s| parse_rating(s).map_err(|m| bad(line_no, m)));
            let rating = rating.transpose()?;
            let timestamp = timestamp.map(|s| parse_timestamp(s).map_err(|m| bad(line_no, m)));
            let timestamp = timestamp.transpose()?;
            if let Some(min) = self.config.min_rating {
                match rating {
                    None => {
                        return Err(bad(
                            line_no,
                            "`min_rating` is set but the file has no rating column".into(),
                        ))
                    }
                    Some(r) if r < min => continue,
                    _ => {}
                }
            }
            let too_many = || bad(line_no, "more than 2^32 distinct ids".into());
            let user = self.users.id(user).ok_or_else(too_many)?;
            let item = self.items.id(item).ok_or_else(too_many)?;
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
        if self.config.min_rating.is_some() {
            return Err(DataError::Invalid {
                what: format!("data file {}", path.display()),
                message: "`min_rating` needs ratings, and adjacency lists have none".into(),
            });
        }
        for (n, line) in text.lines().enumerate() {
            let bad = |message: String| DataError::Line {
                path: path.to_path_buf(),
                line: n + 1,
                message,
            };
            let mut fields = line.split_whitespace();
            let Some(user) = fields.next() else { continue };
            check_integer_id(user).map_err(|m| bad(format!("user {m} (`user item item ...`)")))?;
            let too_many = || bad("more than 2^32 distinct ids".into());
            let user = self.users.id(user).ok_or_else(too_many)?;
            for item in fields {
                check_integer_id(item).map_err(|m| bad(format!("item {m}")))?;
                out.push(Record {
                    user,
                    item: self.items.id(item).ok_or_else(too_many)?,
                    timestamp: None,
                });
            }
        }
        Ok(())
    }
}

/// The file as text: a directory, binary data or text in another encoding is an error naming the file
/// (and the line of the first bad byte); a UTF-8 byte-order mark is skipped.
fn read_text(path: &Path) -> Result<String, DataError> {
    if path.is_dir() {
        return Err(DataError::Invalid {
            what: format!("data file {}", path.display()),
            message: "is a directory; give the file inside it".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        DataError::Line {
            path: path.to_path_buf(),
            line,
            message: format!(
                "byte {at} is not UTF-8 text: expected a text file of interactions, not binary data"
            ),
        }
    })?;
    if text.contains('\0') {
        let line = text[..text.find('\0').unwrap_or(0)].matches('\n').count() + 1;
        return Err(DataError::Line {
            path: path.to_path_buf(),
            line,
            message: "a NUL byte: expected a text file of interactions, not binary data".into(),
        });
    }
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

fn layout_names(cols: &[Column], delim: &str) -> String {
    let names: Vec<&str> = cols
        .iter()
        .map(|c| match c {
            Column::User => "user",
            Column::Item => "item",
            Column::Rating => "rating",
            Column::Timestamp => "timestamp",
            Column::Ignored => "-",
        })
        .collect();
    format!("`{}`", names.join(delim))
}

fn parse_rating(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() => Ok(r),
        Ok(_) => Err(format!("rating {s:?} is not a finite number")),
        Err(_) => Err(format!("rating {} is not a number", shown(s))),
    }
}

fn parse_timestamp(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        if matches!(
            e.kind(),
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
        ) {
            format!("timestamp {s:?} is out of range (a 64-bit count of seconds)")
        } else {
            format!("timestamp {} is not an integer (seconds)", shown(s))
        }
    })
}

/// Adjacency ids are integers (the releases' format); one that overflows 64 bits or is not a number
/// is an error.
fn check_integer_id(s: &str) -> Result<(), String> {
    match s.parse::<i64>() {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
            ) =>
        {
            Err(format!("id {} overflows a 64-bit integer", shown(s)))
        }
        Err(_) => Err(format!("id {} is not an integer", shown(s))),
    }
}

/// MovieLens layouts by file name, else by the first line: `::` (ratings.dat), tab (u.data), comma
/// with a header (ratings.csv).
fn movielens_layout(path: &Path, text: &str) -> Layout {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    // MovieLens files have exactly these four columns.
    let layout = |delimiter: &str, header: bool, file: &str| Layout {
        delimiter: delimiter.into(),
        header,
        columns: Some(vec![
            Column::User,
            Column::Item,
            Column::Rating,
            Column::Timestamp,
        ]),
        source: format!("the MovieLens {file} format"),
    };
    if name.ends_with(".dat") || first.contains("::") {
        layout("::", false, "ratings.dat")
    } else if name.ends_with(".csv") || (!first.contains('\t') && first.contains(',')) {
        let header = first
            .split(',')
            .next()
            .is_some_and(|f| f.trim().parse::<i64>().is_err());
        layout(",", header, "ratings.csv")
    } else {
        layout("\t", false, "u.data")
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
            assert_eq!((raw.n_queries, raw.n_items), (2, 2), "{}", f.display());
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
        assert_eq!((raw.n_queries, raw.n_items), (2, 4));
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
