//! The book under `docs/` and the README, checked offline: the CLI reference is what the
//! binary prints, every YAML and JSON example parses with the real parsers (a full model
//! spec with the spec parser), every relative link resolves to a file and heading, and
//! the README stays a front page.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tollgate_e2e::workspace_root;

/// Every Markdown page of the book.
fn pages() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![workspace_root().join("docs/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The fenced blocks of `text` in `language`, with the line each starts on.
fn blocks<'a>(text: &'a str, language: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, Vec<&'a str>)> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) if lang.trim() == language => current = Some((i + 1, Vec::new())),
            (Some(_), Some("")) => {
                if let Some((start, lines)) = current.take() {
                    out.push((start, lines.join("\n")));
                }
            }
            (Some((_, lines)), _) => lines.push(line),
            _ => {}
        }
    }
    out
}

/// The anchor mdBook gives a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut fence = false;
    text.lines()
        .filter(|l| {
            if l.starts_with("```") {
                fence = !fence;
            }
            !fence && l.starts_with('#')
        })
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// The relative links `[text](target)` of a Markdown text, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fence = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fence = !fence;
        }
        if fence {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                let target = &rest[..end];
                if !target.contains("://") && !target.starts_with("mailto:") {
                    out.push(target.to_string());
                }
                rest = &rest[end..];
            }
        }
    }
    out
}

/// Fails unless every relative link in the file at `path` names a file that exists and,
/// with `#anchor`, a heading in it.
fn check_links(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let dir = path.parent().unwrap();
    for link in links(&text) {
        let (file, anchor) = link.split_once('#').unwrap_or((link.as_str(), ""));
        let target = if file.is_empty() {
            path.to_path_buf()
        } else {
            dir.join(file)
        };
        assert!(
            target.exists(),
            "{}: the link {link} names no file",
            path.display()
        );
        if !anchor.is_empty() {
            let heads = anchors(&std::fs::read_to_string(&target).unwrap());
            assert!(
                heads.iter().any(|h| h == anchor),
                "{}: {link}: no heading #{anchor} in {} ({heads:?})",
                path.display(),
                target.display()
            );
        }
    }
}

#[test]
fn the_cli_reference_is_what_the_binary_prints() {
    let page = workspace_root().join("docs/src/cli-reference.md");
    let committed = std::fs::read_to_string(&page).unwrap_or_default();
    assert!(
        committed == tollgate_cli::reference::markdown(),
        "docs/src/cli-reference.md differs from the CLI's help: run `make docs`"
    );
    for command in [
        "tollgate apply",
        "tollgate publish",
        "tollgate dev",
        "tollgate approve",
    ] {
        assert!(committed.contains(&format!("## `{command}`")), "{command}");
    }
}

#[test]
fn every_yaml_and_json_example_in_the_book_parses() {
    let (mut specs, mut yaml, mut json) = (0, 0, 0);
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let at = |line: usize| format!("{}:{line}", page.display());
        for (line, block) in blocks(&text, "yaml") {
            let value: Vec<Value> = serde_saphyr::from_multiple(&block)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}\n{block}", at(line)));
            // A whole model spec goes through the spec parser, as `tollgate apply` reads it.
            if value.len() == 1
                && value[0].get("model").is_some()
                && value[0].get("target").is_some()
            {
                tollgate_spec::ModelSpec::parse(&block)
                    .unwrap_or_else(|e| panic!("{}: not a valid spec: {e}", at(line)));
                specs += 1;
            }
            yaml += 1;
        }
        for (line, block) in blocks(&text, "json") {
            serde_json::from_str::<Value>(&block)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}\n{block}", at(line)));
            json += 1;
        }
    }
    assert!(
        yaml >= 5 && json >= 1,
        "{yaml} YAML and {json} JSON examples"
    );
    assert!(specs >= 1, "no whole spec in the book");
    // The spec page's whole example is the shipped one.
    let page = std::fs::read_to_string(workspace_root().join("docs/src/spec.md")).unwrap();
    let example =
        std::fs::read_to_string(workspace_root().join("examples/churn/tollgate.yaml")).unwrap();
    assert!(
        page.contains(example.trim_end()),
        "docs/src/spec.md's whole spec is not examples/churn/tollgate.yaml"
    );
}

#[test]
fn the_readme_is_a_front_page_and_every_link_in_it_and_the_book_resolves() {
    let readme = workspace_root().join("README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    assert!(
        text.lines().count() < 200,
        "README.md is {} lines",
        text.lines().count()
    );
    assert!(
        text.contains("make demo\nmake test\n"),
        "the two-command quick start"
    );
    check_links(&readme);
    for page in pages() {
        check_links(&page);
    }
    // Every page is in the book's table of contents.
    let summary = std::fs::read_to_string(workspace_root().join("docs/src/SUMMARY.md")).unwrap();
    let listed = links(&summary);
    for page in pages() {
        let rel = page
            .strip_prefix(workspace_root().join("docs/src"))
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(
            rel == "SUMMARY.md" || listed.contains(&rel),
            "{rel} is not in SUMMARY.md"
        );
    }
}
