//! Images for instance discrimination (contrastive vision: SimCLR, MoCo): every training image is its
//! own class, its positive is another augmented view of itself, and the other images are the pool.
//!
//! Sources: `images`, pixel rows with a label in the last column (CSV, gzip-compressed when the name
//! ends in `.gz`), such as scikit-learn's 8×8 digits (`digits.csv.gz`: 64 pixels 0..16 and the label);
//! or the embedded generator
//! (`synthetic-images`): one random glyph per class drawn at a random shift, rotation and stroke
//! intensity, with pixel noise. A stratified `test` share is held out (seeded by the data stream): the
//! downstream evaluation (kNN and linear probe) fits on the training images' frozen features and is
//! scored on the held-out ones. Queries and candidates are the training images, so `Dataset::train` is
//! (i, i) for every training image; `relevant` holds each image's classmates, so the false-negative
//! rate of every sampler is exact.

use std::io::Read;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::{Dataset, Interactions, QueryItems};
use crate::error::DataError;

/// `[domain].data` of format `images`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesConfig {
    /// Pixel rows with a label, comma-separated, one image per line (`.gz`: gzip-compressed); or a
    /// NumPy `.npy` array: (n, h·w + 1) with the label last, or, with `labels`, the pixels alone as
    /// (n, h·w), (n, h, w), (n, 1, h, w) or (n, h, w, 1).
    pub path: PathBuf,
    /// A `.npy` of the n labels (integers), for a `.npy` of pixels alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// Image height and width; their product is the number of pixel columns.
    pub height: usize,
    pub width: usize,
    /// Pixels are divided by this (digits: 16; 8-bit images: 255).
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// Share of each class held out for the downstream evaluation.
    #[serde(default = "default_test")]
    pub test: f64,
}

fn default_scale() -> f64 {
    255.0
}
fn default_test() -> f64 {
    0.2
}

/// `[domain].data` of format `synthetic-images`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticImagesConfig {
    pub classes: usize,
    pub per_class: usize,
    /// Side of the square images.
    pub size: usize,
    /// Largest rotation of a glyph, degrees.
    pub rotation: f64,
    /// Standard deviation of the pixel noise.
    pub noise: f64,
    pub test: f64,
}

impl Default for SyntheticImagesConfig {
    fn default() -> Self {
        SyntheticImagesConfig {
            classes: 10,
            per_class: 100,
            size: 8,
            rotation: 20.0,
            noise: 0.1,
            test: 0.2,
        }
    }
}

impl ImagesConfig {
    pub fn files(&self) -> Vec<(&'static str, &PathBuf)> {
        let mut files = vec![("path", &self.path)];
        files.extend(self.labels.as_ref().map(|l| ("labels", l)));
        files
    }

    pub fn resolved(&self, dir: &Path) -> ImagesConfig {
        ImagesConfig {
            path: crate::data::resolve_path(dir, &self.path),
            labels: self
                .labels
                .as_ref()
                .map(|l| crate::data::resolve_path(dir, l)),
            ..self.clone()
        }
    }

    fn is_npy(&self) -> bool {
        self.path.extension().is_some_and(|e| e == "npy")
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.height < 3 || self.width < 3 {
            p.push((
                "height",
                format!(
                    "images must be at least 3 × 3 (got {} × {})",
                    self.height, self.width
                ),
            ));
        }
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            p.push(("scale", format!("must be > 0 (got {})", self.scale)));
        }
        if self.labels.is_some() && !self.is_npy() {
            p.push((
                "labels",
                "goes with a `.npy` of pixels; a CSV row carries its label in its last column"
                    .into(),
            ));
        }
        p.extend(test_problem(self.test));
        p
    }
}

impl SyntheticImagesConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.classes < 2 || self.per_class < 5 {
            p.push((
                "classes",
                format!(
                    "needs classes >= 2 and per_class >= 5 (got {} and {})",
                    self.classes, self.per_class
                ),
            ));
        }
        if !(6..=64).contains(&self.size) {
            p.push(("size", format!("must be in 6..=64 (got {})", self.size)));
        }
        if !(self.noise >= 0.0 && self.noise.is_finite()) {
            p.push(("noise", format!("must be >= 0 (got {})", self.noise)));
        }
        p.extend(test_problem(self.test));
        p
    }
}

fn test_problem(test: f64) -> Option<(&'static str, String)> {
    (!(test > 0.0 && test < 1.0)).then(|| ("test", format!("must be in (0, 1) (got {test})")))
}

/// What an image data set adds to the `Dataset` (whose queries and candidates are its training images).
#[derive(Debug, Clone)]
pub struct VisionData {
    pub height: usize,
    pub width: usize,
    /// Every image, training images first (ids 0..n_train), then the held-out ones; pixels in [0, 1]
    /// row-major, one image after another.
    pub pixels: Vec<f32>,
    /// The class of every image.
    pub labels: Vec<u32>,
    pub n_train: usize,
    pub n_classes: usize,
}

impl VisionData {
    pub fn n_images(&self) -> usize {
        self.labels.len()
    }
}

fn read_rows(path: &Path) -> Result<String, DataError> {
    let io = |source| DataError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .map_err(io)?;
        Ok(text)
    } else {
        String::from_utf8(bytes).map_err(|e| DataError::Invalid {
            what: path.display().to_string(),
            message: format!("is not UTF-8 text: {e}"),
        })
    }
}

/// Loads pixel rows with labels.
pub fn load_images(name: &str, c: &ImagesConfig, seed: u64) -> Result<Dataset, DataError> {
    if c.is_npy() {
        return load_npy(name, c, seed);
    }
    let text = read_rows(&c.path)?;
    let d = c.height * c.width;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    let mut classes: Vec<String> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = |message: String| DataError::Line {
            path: c.path.clone(),
            line: n + 1,
            message,
        };
        if fields.len() != d + 1 {
            return Err(bad(format!(
                "expected {d} pixels ({} × {}) and a label, got {} fields",
                c.height,
                c.width,
                fields.len()
            )));
        }
        for f in &fields[..d] {
            let v: f64 = f
                .parse()
                .map_err(|_| bad(format!("pixel {f:?} is not a number")))?;
            if !v.is_finite() {
                return Err(bad(format!("pixel {f:?} is not finite")));
            }
            pixels.push((v / c.scale) as f32);
        }
        let label = fields[d];
        let class = match classes.iter().position(|l| l == label) {
            Some(k) => k,
            None => {
                classes.push(label.to_string());
                classes.len() - 1
            }
        };
        labels.push(class as u32);
    }
    if classes.len() < 2 {
        return Err(DataError::Invalid {
            what: c.path.display().to_string(),
            message: format!(
                "needs images of at least 2 classes (found {})",
                classes.len()
            ),
        });
    }
    build(
        name,
        c.height,
        c.width,
        pixels,
        labels,
        classes.len(),
        c.test,
        seed,
    )
}

/// Loads a `.npy` of pixels (with the label last, or with a `.npy` of labels).
fn load_npy(name: &str, c: &ImagesConfig, seed: u64) -> Result<Dataset, DataError> {
    let d = c.height * c.width;
    let pixels = super::npy::read(&c.path)?;
    let bad = |what: &Path, message: String| DataError::Invalid {
        what: what.display().to_string(),
        message,
    };
    let n = pixels.shape.first().copied().unwrap_or(0);
    let per_image: usize = pixels.shape.iter().skip(1).product();
    let (rows, labels): (Vec<&[f32]>, Vec<f32>) = match &c.labels {
        None => {
            if pixels.shape.len() != 2 || per_image != d + 1 {
                return Err(bad(
                    &c.path,
                    format!(
                        "has shape {:?}: without `labels` it must be (n, {}): {} pixels ({} × {}) and the label",
                        pixels.shape,
                        d + 1,
                        d,
                        c.height,
                        c.width
                    ),
                ));
            }
            pixels
                .values
                .chunks_exact(d + 1)
                .map(|r| (&r[..d], r[d]))
                .unzip()
        }
        Some(path) => {
            let labels = super::npy::read(path)?;
            let shapes_ok = per_image == d
                && pixels.shape.len() >= 2
                && pixels.shape[1..].iter().filter(|&&s| s != 1).count() <= 2;
            if !shapes_ok {
                return Err(bad(
                    &c.path,
                    format!(
                        "has shape {:?}: with `labels` it must be (n, {d}), (n, {h}, {w}), (n, 1, {h}, {w}) or (n, {h}, {w}, 1)",
                        pixels.shape,
                        h = c.height,
                        w = c.width
                    ),
                ));
            }
            if labels.shape.iter().product::<usize>() != n || labels.shape.len() > 2 {
                return Err(bad(
                    path,
                    format!(
                        "has shape {:?}: it must hold one label per image of {} ({n})",
                        labels.shape,
                        c.path.display()
                    ),
                ));
            }
            (
                pixels.values.chunks_exact(d.max(1)).collect(),
                labels.values,
            )
        }
    };
    let mut classes: Vec<i64> = Vec::new();
    let mut label_ids = Vec::with_capacity(n);
    for (at, &l) in labels.iter().enumerate() {
        if l.fract() != 0.0 || !l.is_finite() {
            let file = c.labels.as_deref().unwrap_or(&c.path);
            return Err(bad(
                file,
                format!("label {l} of image {at} is not an integer"),
            ));
        }
        let l = l as i64;
        let class = classes.iter().position(|&x| x == l).unwrap_or_else(|| {
            classes.push(l);
            classes.len() - 1
        });
        label_ids.push(class as u32);
    }
    if classes.len() < 2 {
        return Err(bad(
            &c.path,
            format!(
                "needs images of at least 2 classes (found {})",
                classes.len()
            ),
        ));
    }
    let mut values = Vec::with_capacity(n * d);
    for (at, row) in rows.iter().enumerate() {
        if let Some(v) = row.iter().find(|v| !v.is_finite()) {
            return Err(bad(&c.path, format!("image {at} has a pixel {v}")));
        }
        values.extend(row.iter().map(|&v| (v as f64 / c.scale) as f32));
    }
    build(
        name,
        c.height,
        c.width,
        values,
        label_ids,
        classes.len(),
        c.test,
        seed,
    )
}

/// Splits stratified by class (each class's images shuffled, its `test` share held out) and builds the
/// data set with the training images first.
#[allow(clippy::too_many_arguments)]
fn build(
    name: &str,
    height: usize,
    width: usize,
    pixels: Vec<f32>,
    labels: Vec<u32>,
    n_classes: usize,
    test: f64,
    seed: u64,
) -> Result<Dataset, DataError> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let d = height * width;
    let (mut train, mut held_out) = (Vec::new(), Vec::new());
    for class in 0..n_classes as u32 {
        let mut of: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if of.is_empty() {
            continue;
        }
        of.shuffle(&mut rng);
        let n_test =
            ((of.len() as f64 * test).round() as usize).clamp(1, of.len().saturating_sub(2).max(1));
        held_out.extend_from_slice(&of[..n_test]);
        train.extend_from_slice(&of[n_test..]);
    }
    if train.is_empty() {
        return Err(DataError::Invalid {
            what: format!("image data of domain {name:?}"),
            message: format!(
                "no image is left to train on: each of the {} images' classes has a single image, which \
                 the held-out split takes (every class keeps one held-out image; a class needs at least 2)",
                labels.len()
            ),
        });
    }
    train.sort_unstable();
    held_out.sort_unstable();
    let order: Vec<usize> = train.iter().chain(&held_out).copied().collect();
    let vision = VisionData {
        height,
        width,
        pixels: order
            .iter()
            .flat_map(|&i| pixels[i * d..(i + 1) * d].iter().copied())
            .collect(),
        labels: order.iter().map(|&i| labels[i]).collect(),
        n_train: train.len(),
        n_classes,
    };
    let n = vision.n_train;
    let mut pairs = Interactions::default();
    for i in 0..n as u32 {
        pairs.push(i, i);
    }
    let mut relevant = Interactions::default();
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); n_classes];
    for i in 0..n {
        by_class[vision.labels[i] as usize].push(i as u32);
    }
    for i in 0..n {
        for &j in &by_class[vision.labels[i] as usize] {
            if j as usize != i {
                relevant.push(i as u32, j);
            }
        }
    }
    let mut data = Dataset::new(
        name.into(),
        n,
        n,
        pairs,
        Interactions::default(),
        Interactions::default(),
        Some(QueryItems::from_interactions(n, &relevant)),
    );
    data.notes.push(format!(
        "{} images of {height} × {width} in {n_classes} classes: {n} to train, {} held out",
        vision.n_images(),
        held_out.len()
    ));
    data.vision = Some(vision);
    Ok(data)
}

/// The embedded generator (see `SyntheticImagesConfig`).
pub fn generate(name: &str, c: &SyntheticImagesConfig, seed: u64) -> Result<Dataset, DataError> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let s = c.size;
    // A glyph per class: a random connected stroke of cells on a (s/2) grid, centred.
    let g = (s / 2).max(3);
    let glyphs: Vec<Vec<(f64, f64)>> = (0..c.classes)
        .map(|_| {
            let (mut x, mut y) = (rng.random_range(0..g) as i64, rng.random_range(0..g) as i64);
            let mut cells = vec![(x, y)];
            while cells.len() < g + 2 {
                let (dx, dy) = [(0, 1), (1, 0), (0, -1), (-1, 0)][rng.random_range(0..4)];
                x = (x + dx).clamp(0, g as i64 - 1);
                y = (y + dy).clamp(0, g as i64 - 1);
                if !cells.contains(&(x, y)) {
                    cells.push((x, y));
                }
            }
            let centre = (g as f64 - 1.0) / 2.0;
            cells
                .into_iter()
                .map(|(x, y)| (x as f64 - centre, y as f64 - centre))
                .collect()
        })
        .collect();
    let noise = Normal::new(0.0, c.noise.max(f64::MIN_POSITIVE)).expect("noise >= 0");
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    let scale = s as f64 / g as f64;
    for (class, glyph) in glyphs.iter().enumerate() {
        for _ in 0..c.per_class {
            let angle = rng.random_range(-c.rotation..=c.rotation).to_radians();
            let (sin, cos) = angle.sin_cos();
            let (ox, oy) = (rng.random_range(-1.0..=1.0), rng.random_range(-1.0..=1.0));
            let intensity = rng.random_range(0.6..1.0);
            let mut image = vec![0f32; s * s];
            for &(x, y) in glyph {
                let (rx, ry) = (x * cos - y * sin, x * sin + y * cos);
                let px = (rx * scale + s as f64 / 2.0 + ox).floor();
                let py = (ry * scale + s as f64 / 2.0 + oy).floor();
                // Each glyph cell covers a scale × scale block.
                for by in 0..scale.round() as i64 {
                    for bx in 0..scale.round() as i64 {
                        let (ix, iy) = (px as i64 + bx, py as i64 + by);
                        if (0..s as i64).contains(&ix) && (0..s as i64).contains(&iy) {
                            image[iy as usize * s + ix as usize] = intensity as f32;
                        }
                    }
                }
            }
            for p in &mut image {
                let v = *p as f64
                    + if c.noise > 0.0 {
                        noise.sample(&mut rng)
                    } else {
                        0.0
                    };
                *p = v.clamp(0.0, 1.0) as f32;
            }
            pixels.extend(image);
            labels.push(class as u32);
        }
    }
    build(name, s, s, pixels, labels, c.classes, c.test, rng.random())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rows_load_with_labels_a_stratified_split_and_classmates_as_relevant() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("px.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..20 {
            let label = ["cat", "dog"][i % 2];
            let px: Vec<String> = (0..9).map(|p| ((i + p) % 17).to_string()).collect();
            writeln!(gz, "{},{label}", px.join(",")).unwrap();
        }
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let c = ImagesConfig {
            path: path.clone(),
            height: 3,
            width: 3,
            scale: 16.0,
            test: 0.2,
            labels: None,
        };
        let data = load_images("px", &c, 1).unwrap();
        let v = data.vision.as_ref().unwrap();
        assert_eq!((v.n_images(), v.n_train, v.n_classes), (20, 16, 2));
        // Two of each class held out, after the training images.
        assert_eq!(v.labels[16..].iter().filter(|&&l| l == 0).count(), 2);
        assert!(v.pixels.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert_eq!(data.train.len(), 16);
        assert!(data
            .train
            .queries
            .iter()
            .zip(&data.train.items)
            .all(|(q, i)| q == i));
        let relevant = data.relevant.as_ref().unwrap();
        assert_eq!(relevant.items(0).len(), 7);
        assert!(relevant
            .items(0)
            .iter()
            .all(|&j| v.labels[j as usize] == v.labels[0]));

        std::fs::write(dir.path().join("bad.csv"), "1,2,3,x\n").unwrap();
        let bad = ImagesConfig {
            path: dir.path().join("bad.csv"),
            ..c
        };
        let e = load_images("px", &bad, 1).unwrap_err().to_string();
        assert!(
            e.contains("bad.csv:1") && e.contains("expected 9 pixels"),
            "{e}"
        );
    }

    #[test]
    fn npy_pixels_load_as_the_same_rows_with_the_label_last_or_in_their_own_file() {
        let dir = tempfile::tempdir().unwrap();
        // 12 images of 3 × 3 in classes 4 and 9: as a CSV, as one (12, 10) f8 array, and as (12, 3, 3)
        // u1 pixels with an i8 label file.
        let label = |i: usize| [4i64, 9][i % 2];
        let px = |i: usize, p: usize| ((i * 3 + p) % 17) as u8;
        let csv: String = (0..12)
            .map(|i| {
                let row: Vec<String> = (0..9).map(|p| px(i, p).to_string()).collect();
                format!("{},{}\n", row.join(","), label(i))
            })
            .collect();
        std::fs::write(dir.path().join("px.csv"), csv).unwrap();
        let with_label: Vec<u8> = (0..12)
            .flat_map(|i| {
                (0..9)
                    .map(move |p| px(i, p) as f64)
                    .chain([label(i) as f64])
            })
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let write = |name: &str, bytes: Vec<u8>| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let rows = write(
            "rows.npy",
            crate::data::npy::encode("<f8", &[12, 10], &with_label),
        );
        let pixels: Vec<u8> = (0..12)
            .flat_map(|i| (0..9).map(move |p| px(i, p)))
            .collect();
        let pixels = write(
            "px.npy",
            crate::data::npy::encode("|u1", &[12, 3, 3], &pixels),
        );
        let labels: Vec<u8> = (0..12).flat_map(|i| label(i).to_le_bytes()).collect();
        let labels = write("y.npy", crate::data::npy::encode("<i8", &[12], &labels));
        let c = ImagesConfig {
            path: dir.path().join("px.csv"),
            height: 3,
            width: 3,
            scale: 16.0,
            test: 0.25,
            labels: None,
        };
        let load = |c: &ImagesConfig| load_images("px", c, 3).unwrap().vision.unwrap();
        let reference = load(&c);
        for c in [
            ImagesConfig {
                path: rows.clone(),
                ..c.clone()
            },
            ImagesConfig {
                path: pixels.clone(),
                labels: Some(labels.clone()),
                ..c.clone()
            },
        ] {
            let v = load(&c);
            assert_eq!(
                (&v.pixels, &v.labels),
                (&reference.pixels, &reference.labels)
            );
        }
        // A pixel array without its labels, or labels that do not match, are named with their shapes.
        let e = load_images(
            "px",
            &ImagesConfig {
                path: pixels.clone(),
                ..c.clone()
            },
            3,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("px.npy") && e.contains("[12, 3, 3]") && e.contains("(n, 10)"),
            "{e}"
        );
        let short = write("short.npy", crate::data::npy::encode("|u1", &[5], &[0; 5]));
        let e = load_images(
            "px",
            &ImagesConfig {
                path: pixels,
                labels: Some(short),
                ..c.clone()
            },
            3,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("short.npy") && e.contains("one label per image"),
            "{e}"
        );
    }

    #[test]
    fn the_generator_draws_each_class_around_its_glyph() {
        let c = SyntheticImagesConfig::default();
        let data = generate("g", &c, 0).unwrap();
        let v = data.vision.as_ref().unwrap();
        assert_eq!(v.n_images(), 1000);
        // Same-class images are closer on average than images of different classes.
        let d = v.height * v.width;
        let img = |i: usize| &v.pixels[i * d..(i + 1) * d];
        let dist = |a: usize, b: usize| -> f32 {
            img(a)
                .iter()
                .zip(img(b))
                .map(|(x, y)| (x - y) * (x - y))
                .sum()
        };
        let (mut same, mut other, mut ns, mut no) = (0.0, 0.0, 0, 0);
        for a in 0..200 {
            for b in a + 1..200 {
                if v.labels[a] == v.labels[b] {
                    same += dist(a, b);
                    ns += 1;
                } else {
                    other += dist(a, b);
                    no += 1;
                }
            }
        }
        assert!(same / (ns as f32) < other / (no as f32));
        assert_eq!(
            generate("g", &c, 0).unwrap().vision.unwrap().pixels,
            v.pixels
        );
    }

    #[test]
    fn data_that_leaves_no_training_image_is_refused_not_a_panic() {
        let e = build("one-each", 2, 2, vec![0.5; 12], vec![0, 1, 2], 3, 0.2, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no image is left to train on"), "{e}");
        // A label no image has is no class to split.
        let d = build("gap", 2, 2, vec![0.5; 16], vec![0, 0, 0, 2], 3, 0.2, 0).unwrap();
        assert_eq!(d.vision.unwrap().n_train, 2);
    }
}
