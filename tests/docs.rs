//! The documentation links only what a clone has: every relative link in README.md and
//! docs/*.md names a file or directory inside the repository that exists.

use std::path::{Path, PathBuf};

/// The targets of the inline Markdown links `[text](target)` in `text`, outside fenced
/// code blocks and inline code.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop inline code spans, which may hold `](` that is not a link.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].trim().to_owned();
            if !found.contains(&target) {
                found.push(target);
            }
            rest = &after[end..];
        }
    }
    found
}

/// The files whose links are checked: README.md and every Markdown file under docs/.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let docs = root.join("docs");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&docs)
        .expect("docs/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "docs/ holds no Markdown file");
    files.extend(entries);
    files
}

/// What is wrong with `target` linked from `file`, if anything.
fn broken(root: &Path, file: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") || target.starts_with('#') {
        return None;
    }
    let path = target.split('#').next().unwrap_or(target);
    let resolved = file.parent().unwrap().join(path);
    let Ok(real) = resolved.canonicalize() else {
        return Some(format!("{target}: no such file"));
    };
    if !real.starts_with(root) {
        return Some(format!("{target}: outside the repository"));
    }
    None
}

#[test]
fn readme_and_docs_link_only_files_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in documents(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in links(&text) {
            checked += 1;
            if let Some(problem) = broken(&root, &file, &target) {
                problems.push(format!("{}: {problem}", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
    assert!(
        checked >= 10,
        "only {checked} links found: is the parser blind?"
    );
}

#[test]
fn every_dialect_has_its_document_linked_from_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let targets = links(&readme);
    for doc in [
        "docs/README.md",
        "docs/turntable-v1.md",
        "docs/talker.md",
        "docs/world.md",
        "docs/socketcluster.md",
    ] {
        assert!(
            targets.iter().any(|t| t == doc),
            "README.md does not link {doc}"
        );
    }
    let index = std::fs::read_to_string(root.join("docs/README.md")).unwrap();
    let indexed = links(&index);
    for doc in [
        "turntable-v1.md",
        "talker.md",
        "world.md",
        "socketcluster.md",
        "sockjs.md",
        "http-api.md",
    ] {
        assert!(
            indexed.iter().any(|t| t == doc),
            "docs/README.md does not link {doc}"
        );
    }
}

#[test]
fn the_link_check_catches_what_it_should() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap();
    let readme = root.join("README.md");
    let found =
        links("see [a](../shared/x.md) and `[b](c)` and [d](docs/x.md#part)\n```\n[e](f)\n```\n");
    assert_eq!(found, ["../shared/x.md", "docs/x.md#part"]);
    assert!(broken(&root, &readme, "../shared/protocols/talker.md").is_some());
    assert!(broken(&root, &readme, "..").unwrap().contains("outside"));
    assert!(
        broken(&root, &readme, "docs/nope.md")
            .unwrap()
            .contains("no such file")
    );
    assert!(broken(&root, &readme, "docs/talker.md#errors").is_none());
    assert!(broken(&root, &readme, "https://example.com/").is_none());
}
