//! `cargo xtask images load|list|prune`: the node's pulled-image store, as `docker load`,
//! `crictl images` and `crictl rmi --prune` handle a node's images. A loaded image runs in pods
//! with `imagePullPolicy: IfNotPresent` (or `Never`) without a registry.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;
use k8s_labs_node::DEFAULT_PULLED_IMAGE_DIR;
use k8s_labs_node::registry::{
    LoadOptions, NamedImage, PruneReport, PullStore, load_archive, prune_images,
};

use crate::Exit;

/// What to do with the store.
#[derive(Subcommand)]
pub(crate) enum ImagesCommand {
    /// Loads a `docker save` archive or an OCI image layout archive (tar, or tar.gz).
    Load {
        /// The archive.
        file: PathBuf,
        /// The repository for images the archive names only by a tag (`v1` → REPO:v1).
        #[arg(long, value_name = "REPO")]
        repository: Option<String>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Lists the stored images: reference, digest, size and where each came from.
    List {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Removes every image no running container uses, then every blob and layer no
    /// remaining image uses.
    Prune {
        #[command(flatten)]
        store: StoreArg,
    },
}

/// Which store.
#[derive(clap::Args)]
pub(crate) struct StoreArg {
    /// The pulled-image store (the cluster's, unless it was configured elsewhere).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PULLED_IMAGE_DIR)]
    store: PathBuf,
}

/// Runs an `images` command; errors are one line and exit 2.
pub(crate) fn images(command: ImagesCommand) -> Exit {
    let result = match command {
        ImagesCommand::Load {
            file,
            repository,
            store,
        } => load(&file, repository, &store.store),
        ImagesCommand::List { store } => list(&store.store),
        ImagesCommand::Prune { store } => prune(&store.store),
    };
    match result {
        Ok(()) => Exit::Passed,
        Err(error) => {
            eprintln!("error: {error:#}");
            Exit::Usage
        }
    }
}

fn load(file: &Path, repository: Option<String>, dir: &Path) -> Result<()> {
    let store = PullStore::open(dir)?;
    let loaded = load_archive(&store, file, &LoadOptions { repository })?;
    for image in loaded {
        let size = human_size(image.size);
        if image.references.is_empty() {
            println!("Loaded image ID: {} ({size})", image.digest);
        }
        for reference in &image.references {
            println!(
                "Loaded image: {reference} ({}, {size})",
                short_digest(&image.digest)
            );
        }
    }
    Ok(())
}

fn list(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        println!("No images in {}", dir.display());
        return Ok(());
    }
    let store = PullStore::open(dir)?;
    let references = store.references()?;
    let mut rows: Vec<[String; 4]> = Vec::new();
    for digest in store.image_digests()? {
        let Some(image) = store.image(&digest)? else {
            continue;
        };
        let size = human_size(image.record.size);
        let mut named = false;
        for record in references.iter().filter(|record| record.digest == digest) {
            named = true;
            rows.push([
                record.reference.clone(),
                short_digest(&digest),
                size.clone(),
                record.source.clone(),
            ]);
        }
        if !named {
            let row = ["<none>", &short_digest(&digest), &size, "-"];
            rows.push(row.map(str::to_string));
        }
    }
    if rows.is_empty() {
        println!("No images in {}", dir.display());
        return Ok(());
    }
    rows.sort();
    print!("{}", table(&rows));
    Ok(())
}

/// Rows under the header, each column as wide as its widest cell, as crictl aligns them.
fn table(rows: &[[String; 4]]) -> String {
    let header = ["REFERENCE", "DIGEST", "SIZE", "SOURCE"].map(str::to_string);
    let mut widths = header.clone().map(|cell| cell.len());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("   ").trim_end());
        text.push('\n');
    }
    text
}

fn prune(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        println!("No images in {}", dir.display());
        return Ok(());
    }
    let store = PullStore::open(dir)?;
    print!("{}", prune_summary(&prune_images(&store)?));
    Ok(())
}

/// What a prune did, in `docker image prune`'s words.
fn prune_summary(report: &PruneReport) -> String {
    let mut text = String::new();
    let names = |image: &NamedImage| match image.references.is_empty() {
        true => short_digest(&image.digest),
        false => image.references.join(", "),
    };
    for image in &report.in_use {
        text.push_str(&format!("in use, kept: {}\n", names(image)));
    }
    for image in &report.removed {
        for reference in &image.references {
            text.push_str(&format!("untagged: {reference}\n"));
        }
        text.push_str(&format!("deleted: {}\n", image.digest));
    }
    for reference in &report.dangling {
        text.push_str(&format!("untagged: {reference} (its image was gone)\n"));
    }
    text.push_str(&format!(
        "deleted {} blob(s) and {} unpacked layer(s)\n",
        report.blobs, report.layers
    ));
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(report.freed)
    ));
    text
}

/// `sha256:` and the first 12 hex digits.
fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", hex.get(..12).unwrap_or(hex))
}

/// A size as crictl prints it (go-units' `HumanSize`): decimal units, four significant
/// digits, trailing zeros dropped: `512B`, `1.5MB`, `78.41MB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    // %.4g: four significant digits (size < 1000 here, so never an exponent).
    let digits = if size < 1.0 {
        3
    } else {
        3 - size.log10().floor() as usize
    };
    let mut text = format!("{size:.digits$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_defaults_to_the_clusters() {
        use clap::Parser;
        let parsed = crate::Cli::try_parse_from(["xtask", "images", "list"]).unwrap();
        let crate::Command::Images {
            command: ImagesCommand::List { store },
        } = parsed.command
        else {
            panic!("not images list");
        };
        assert_eq!(store.store, Path::new(DEFAULT_PULLED_IMAGE_DIR));
        let load = [
            "xtask",
            "images",
            "load",
            "x.tar",
            "--repository",
            "r",
            "--store",
            "d",
        ];
        assert!(crate::Cli::try_parse_from(load).is_ok());
        assert!(crate::Cli::try_parse_from(["xtask", "images", "load"]).is_err());
    }

    #[test]
    fn sizes_read_as_crictl_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(78_412_345), "78.41MB");
        assert_eq!(human_size(123_456), "123.5kB");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(human_size(4_200_000_000), "4.2GB");
        assert_eq!(
            short_digest(&format!("sha256:{}", "0123456789abcdef".repeat(4))),
            "sha256:0123456789ab"
        );
    }

    #[test]
    fn the_table_lines_columns_up_and_prune_says_what_went() {
        let rows = [
            [
                "docker.io/library/nginx:1.27",
                "sha256:0123456789ab",
                "1.5MB",
                "archive n.tar",
            ],
            ["x:1", "sha256:ba9876543210", "512B", "registry x"],
        ]
        .map(|row| row.map(str::to_string));
        assert_eq!(
            table(&rows),
            "REFERENCE                      DIGEST                SIZE    SOURCE\n\
             docker.io/library/nginx:1.27   sha256:0123456789ab   1.5MB   archive n.tar\n\
             x:1                            sha256:ba9876543210   512B    registry x\n"
        );
        let digest = format!("sha256:{}", "ab".repeat(32));
        let report = PruneReport {
            removed: vec![NamedImage {
                digest: digest.clone(),
                references: vec!["docker.io/library/nginx:1.27".into()],
            }],
            in_use: vec![NamedImage {
                digest: digest.clone(),
                references: vec![],
            }],
            dangling: vec![],
            blobs: 3,
            layers: 2,
            freed: 1_500_000,
        };
        assert_eq!(
            prune_summary(&report),
            format!(
                "in use, kept: sha256:abababababab\nuntagged: docker.io/library/nginx:1.27\n\
                 deleted: {digest}\ndeleted 3 blob(s) and 2 unpacked layer(s)\n\
                 Total reclaimed space: 1.5MB\n"
            )
        );
    }
}
