//! The runtime crate's layers point down and never loop (issue 10).
//!
//! `breaker-runtime/src` is one folder per layer, each importing only the layers below it:
//!
//! | layer      | may import                        |
//! | ---------- | --------------------------------- |
//! | `core`     | nothing else of the crate         |
//! | `notify`   | `core`                            |
//! | `breaker`  | `core`, `notify`                  |
//! | `store`    | `core`, `notify`, `breaker`       |
//! | `runtime`  | all of the above                  |
//!
//! `lib.rs`, `__private.rs` and the public `redis.rs` facade sit above the layers and may import
//! anything. Inside the layers every reference names its layer (`crate::core::config::Config`),
//! never the crate root's re-exports (`crate::Config`), `crate::__private` or the facade, so a
//! reader (and this test) sees each dependency's direction where it is written.
//!
//! The scanner parses each file with `syn` and collects every path into the crate: `use` trees
//! (grouped, multi-line, `pub use`), paths in expressions, types and patterns, and
//! `crate::`/`super::`/`self::` paths inside macro invocations. It resolves `super::` and
//! `self::` against the module the code is in, and follows re-exports (`pub use`, globs) to the
//! module that defines the item, so `crate::store::MemoryStore` counts as a use of
//! `store::memory` when `store/mod.rs` re-exports it from there. Items under `#[cfg(test)]`
//! (test modules, test helpers) are ignored: tests may import anything.
//!
//! Two checks: every edge from a layer goes to the same layer or one below it; and the graph of
//! file modules (`store::redis::sync`) has no cycle. Edges between a module and its own
//! ancestors are left out of the cycle check: a parent re-exporting its children, and children
//! using `super::*`, is how Rust modules are built, not a loop between concepts.
//!
//! `BREAKER_LAYERS_SRC` points the test at another tree (a layout being tried out).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::visit::Visit;

/// The layer folders, bottom first: a layer may import those before it.
const LAYERS: [&str; 5] = ["core", "notify", "breaker", "store", "runtime"];
/// Modules beside the crate root that may import anything: the generated code's support module
/// and the public protocol facade (with `lib.rs`, the root itself).
const ROOT_MODULES: [&str; 2] = ["__private", "redis"];

#[test]
fn runtime_layers_point_down() {
    let src = std::env::var("BREAKER_LAYERS_SRC")
        .unwrap_or_else(|_| format!("{}/../breaker-runtime/src", env!("CARGO_MANIFEST_DIR")));
    let files = read_tree(Path::new(&src));
    assert!(!files.is_empty(), "no .rs files under {src}");
    let findings = check(&files);
    // On a flat tree every other finding is noise: say what is missing first.
    assert!(
        findings.missing_layers.is_empty(),
        "expected layer folders core/, notify/, breaker/, store/, runtime/ under \
         breaker-runtime/src ({src}); missing: {}",
        findings.missing_layers.join(", ")
    );
    assert!(
        findings.is_clean(),
        "layering problems in {src}:\n{findings}"
    );
}

/// The other library crates of the workspace have no layers to check, but no import cycle
/// between their files either. Binary targets (`main.rs`, `bin/`) are crates of their own and
/// are left out.
#[test]
fn other_crates_have_no_import_cycles() {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let mut problems = String::new();
    for krate in ["breaker-spec", "breaker-macros", "breakerctl", "examples"] {
        let src = format!("{root}/{krate}/src");
        let files: BTreeMap<String, String> = read_tree(Path::new(&src))
            .into_iter()
            .filter(|(f, _)| f != "main.rs" && !f.starts_with("bin/"))
            .collect();
        assert!(files.contains_key("lib.rs"), "{src} has no lib.rs");
        let findings = check(&files);
        for file in &findings.unparsable {
            problems += &format!("{krate}: cannot parse {file}\n");
        }
        for cycle in &findings.cycles {
            let names: Vec<String> = cycle
                .iter()
                .map(|e| show(&e.from))
                .chain([show(&cycle[0].from)])
                .collect();
            problems += &format!("{krate}: import cycle: {}\n", names.join(" → "));
            for e in cycle {
                problems += &format!("    {}\n", e.at());
            }
        }
    }
    assert!(problems.is_empty(), "{problems}");
}

// ---------------------------------------------------------------------------------------------
// The scanner
// ---------------------------------------------------------------------------------------------

/// A module's path from the crate root: `["store", "redis", "sync"]`; the root is empty.
type ModPath = Vec<String>;

#[derive(Default)]
struct Module {
    /// The file the module is written in (itself, unless it is an inline `mod x { .. }`).
    file: ModPath,
    /// Child modules declared in it (`mod x;` or inline), test-only ones left out.
    children: BTreeSet<String>,
    /// Names of the items it defines, for resolving glob re-exports.
    items: BTreeSet<String>,
    imports: Vec<Import>,
}

/// One leaf of a `use` tree.
struct Import {
    path: Vec<String>,
    /// The name it binds; `None` for a glob (its path is then the module).
    binding: Option<String>,
}

/// A path written in the source that may lead into the crate.
struct Ref {
    file: String,
    line: usize,
    /// The module the path is written in (inline modules included), for `super::`/`self::`.
    scope: ModPath,
    path: Vec<String>,
    /// The path of a macro invocation (`crate::some_macro!`): `#[macro_export]` macros can only
    /// be named at the crate root, so `crate::name!` is not a root re-export.
    is_macro: bool,
}

/// An import of one file module by another, with where it is written.
#[derive(Clone)]
struct Edge {
    file: String,
    line: usize,
    path: String,
    from: ModPath,
    to: ModPath,
}

impl Edge {
    fn at(&self) -> String {
        format!("{}:{} `{}`", self.file, self.line, self.path)
    }
}

#[derive(Default)]
struct Findings {
    missing_layers: Vec<&'static str>,
    unparsable: Vec<String>,
    /// Files whose module is neither in a layer nor one of the root modules.
    outside: Vec<String>,
    /// Edges from a layer to a layer above it.
    upward: Vec<Edge>,
    /// Paths from inside a layer through the crate root, `__private` or the facade.
    through_root: Vec<Edge>,
    /// Each cycle as its edges, the last one returning to the first module.
    cycles: Vec<Vec<Edge>>,
}

impl Findings {
    fn is_clean(&self) -> bool {
        self.missing_layers.is_empty()
            && self.unparsable.is_empty()
            && self.outside.is_empty()
            && self.upward.is_empty()
            && self.through_root.is_empty()
            && self.cycles.is_empty()
    }
}

impl std::fmt::Display for Findings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.missing_layers.is_empty() {
            writeln!(
                f,
                "expected layer folders core/, notify/, breaker/, store/, runtime/ under \
                 breaker-runtime/src; missing: {}",
                self.missing_layers
                    .iter()
                    .map(|l| format!("{l}/"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
        for file in &self.unparsable {
            writeln!(f, "cannot parse {file}")?;
        }
        for file in &self.outside {
            writeln!(
                f,
                "{file} is in no layer: move it under one of {}/ (only lib.rs, __private.rs and \
                 redis.rs sit beside them)",
                LAYERS.join("/, ")
            )?;
        }
        for e in &self.upward {
            writeln!(f, "upward import: {} ({} → {})", e.at(), e.from[0], e.to[0])?;
        }
        for e in &self.through_root {
            writeln!(
                f,
                "import through the crate root: {} reaches `{}` from layer `{}`; write the full \
                 path `crate::<layer>::…`",
                e.at(),
                show(&e.to),
                e.from[0]
            )?;
        }
        for cycle in &self.cycles {
            let names: Vec<String> = cycle
                .iter()
                .map(|e| show(&e.from))
                .chain([show(&cycle[0].from)])
                .collect();
            writeln!(f, "import cycle: {}", names.join(" → "))?;
            for e in cycle {
                writeln!(f, "    {} → {}: {}", show(&e.from), show(&e.to), e.at())?;
            }
        }
        Ok(())
    }
}

fn show(m: &[String]) -> String {
    if m.is_empty() {
        "crate".to_owned()
    } else {
        m.join("::")
    }
}

fn read_tree(src: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let rel = path.strip_prefix(src).expect("under src");
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>();
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                out.insert(rel.join("/"), text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// `store/redis/mod.rs` and `store/redis.rs` are `store::redis`; `lib.rs` is the root.
fn module_of(file: &str) -> ModPath {
    if file == "lib.rs" {
        return Vec::new();
    }
    let mut parts: ModPath = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn layer_rank(m: &[String]) -> Option<usize> {
    LAYERS
        .iter()
        .position(|l| m.first().is_some_and(|f| f == l))
}

/// Whether a `#[cfg(..)]` predicate can only hold in test builds.
fn requires_test(meta: &syn::Meta) -> bool {
    match meta {
        syn::Meta::Path(p) => p.is_ident("test"),
        syn::Meta::List(l) if l.path.is_ident("all") => l
            .parse_args_with(
                syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
            )
            .is_ok_and(|args| args.iter().any(requires_test)),
        _ => false,
    }
}

fn test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && a.parse_args::<syn::Meta>().is_ok_and(|m| requires_test(&m))
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item;
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

fn item_name(item: &syn::Item) -> Option<String> {
    use syn::Item;
    let ident = match item {
        Item::Const(i) => &i.ident,
        Item::Enum(i) => &i.ident,
        Item::Fn(i) => &i.sig.ident,
        Item::Macro(i) => i.ident.as_ref()?,
        Item::Static(i) => &i.ident,
        Item::Struct(i) => &i.ident,
        Item::Trait(i) => &i.ident,
        Item::TraitAlias(i) => &i.ident,
        Item::Type(i) => &i.ident,
        Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// Walks one file, filling the crate's modules and references.
struct Scan<'a> {
    file: &'a str,
    file_module: ModPath,
    scope: ModPath,
    modules: &'a mut BTreeMap<ModPath, Module>,
    refs: &'a mut Vec<Ref>,
    /// Modules declared `#[cfg(test)] mod x;`: their files are skipped.
    test_modules: &'a mut Vec<ModPath>,
}

impl Scan<'_> {
    fn module(&mut self) -> &mut Module {
        let file = self.file_module.clone();
        self.modules
            .entry(self.scope.clone())
            .or_insert_with(|| Module {
                file,
                ..Module::default()
            })
    }

    fn reference(&mut self, path: Vec<String>, span: Span, is_macro: bool) {
        self.refs.push(Ref {
            file: self.file.to_owned(),
            line: span.start().line,
            scope: self.scope.clone(),
            path,
            is_macro,
        });
    }

    /// Each leaf of a `use` tree with the span of its last segment (its own line in a
    /// multi-line group).
    fn flatten(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(Import, Span)>) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                Self::flatten(&p.tree, prefix, out);
                prefix.pop();
            }
            syn::UseTree::Name(n) if n.ident == "self" => {
                let binding = prefix.last().cloned();
                out.push((
                    Import {
                        path: prefix.clone(),
                        binding,
                    },
                    n.ident.span(),
                ));
            }
            syn::UseTree::Name(n) => {
                let mut path = prefix.clone();
                path.push(n.ident.to_string());
                out.push((
                    Import {
                        path,
                        binding: Some(n.ident.to_string()),
                    },
                    n.ident.span(),
                ));
            }
            syn::UseTree::Rename(r) => {
                let mut path = prefix.clone();
                if r.ident != "self" {
                    path.push(r.ident.to_string());
                }
                let binding = (r.rename != "_").then(|| r.rename.to_string());
                out.push((Import { path, binding }, r.ident.span()));
            }
            syn::UseTree::Glob(g) => {
                out.push((
                    Import {
                        path: prefix.clone(),
                        binding: None,
                    },
                    g.star_token.span,
                ));
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    Self::flatten(t, prefix, out);
                }
            }
        }
    }

    /// `crate::a::b`, `$crate::a`, `super::x`, `self::x` inside a macro's tokens, which `syn`
    /// does not parse.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let colon =
            |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':');
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(g) => self.scan_tokens(g.stream()),
                TokenTree::Ident(id)
                    if (id == "crate" || id == "super" || id == "self")
                        && !(i >= 2 && colon(tokens.get(i - 1)) && colon(tokens.get(i - 2))) =>
                {
                    let mut path = vec![id.to_string()];
                    let mut j = i + 1;
                    while colon(tokens.get(j)) && colon(tokens.get(j + 1)) {
                        let Some(TokenTree::Ident(next)) = tokens.get(j + 2) else {
                            break;
                        };
                        path.push(next.to_string());
                        j += 3;
                    }
                    if path.len() >= 2 {
                        self.reference(path, id.span(), false);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Scan<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if test_only(item_attrs(item)) {
            if let syn::Item::Mod(m) = item {
                let mut child = self.scope.clone();
                child.push(m.ident.to_string());
                self.test_modules.push(child);
            }
            return;
        }
        if let Some(name) = item_name(item) {
            let _ = self.module().items.insert(name);
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let name = m.ident.to_string();
        let _ = self.module().children.insert(name.clone());
        if let Some((_, items)) = &m.content {
            self.scope.push(name);
            let _ = self.module();
            for item in items {
                self.visit_item(item);
            }
            let _ = self.scope.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if u.leading_colon.is_some() {
            return;
        }
        let mut leaves = Vec::new();
        Self::flatten(&u.tree, &mut Vec::new(), &mut leaves);
        for (import, span) in leaves {
            self.reference(import.path.clone(), span, false);
            self.module().imports.push(import);
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            syn::ImplItem::Macro(i) => &i.attrs,
            _ => return syn::visit::visit_impl_item(self, item),
        };
        if !test_only(attrs) {
            syn::visit::visit_impl_item(self, item);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.leading_colon.is_none() && p.segments.len() >= 2 {
            let path = p.segments.iter().map(|s| s.ident.to_string()).collect();
            self.reference(path, p.segments[0].ident.span(), false);
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        if m.path.leading_colon.is_none() && m.path.segments.len() >= 2 {
            let path = m
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            self.reference(path, m.path.segments[0].ident.span(), true);
        }
        self.scan_tokens(m.tokens.clone());
    }

    // `pub(in crate::x)` names who may see an item, not a dependency; attributes are docs and
    // cfgs.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}
}

/// The crate as modules with their declarations, for resolving paths.
struct Crate {
    modules: BTreeMap<ModPath, Module>,
}

/// How deep re-exports are followed before giving up (a re-export loop does not compile anyway).
const MAX_DEPTH: u32 = 16;

impl Crate {
    /// The path from the crate root that `path`, written in module `scope`, names; `None` when
    /// it does not lead into the crate (`std::..`, a local type's `Self::..`).
    fn anchor(&self, scope: &[String], path: &[String], depth: u32) -> Option<ModPath> {
        let first = path.first()?.as_str();
        let mut abs: ModPath;
        let rest: &[String];
        match first {
            "crate" | "$crate" => {
                abs = Vec::new();
                rest = &path[1..];
            }
            "super" | "self" => {
                abs = scope.to_vec();
                let mut i = 0;
                while let Some(seg) = path.get(i) {
                    match seg.as_str() {
                        "super" => {
                            abs.pop()?;
                        }
                        "self" => {}
                        _ => break,
                    }
                    i += 1;
                }
                rest = &path[i..];
            }
            _ => {
                let module = self.modules.get(scope)?;
                if module.children.contains(first) {
                    abs = scope.to_vec();
                    rest = path;
                } else {
                    if depth >= MAX_DEPTH {
                        return None;
                    }
                    // A name brought in by a `use` in this module: `use crate::core::config;`
                    // then `config::parse(..)`.
                    let import = module
                        .imports
                        .iter()
                        .find(|i| i.binding.as_deref() == Some(first))?;
                    abs = self.anchor(scope, &import.path, depth + 1)?;
                    rest = &path[1..];
                }
            }
        }
        abs.extend(rest.iter().cloned());
        Some(abs)
    }

    /// The module an absolute path leads to, following re-exports to where the item is defined.
    fn resolve(&self, abs: &[String], depth: u32) -> ModPath {
        let mut cur: ModPath = Vec::new();
        for (i, seg) in abs.iter().enumerate() {
            let Some(module) = self.modules.get(&cur) else {
                return cur;
            };
            if module.children.contains(seg) {
                cur.push(seg.clone());
                continue;
            }
            if module.items.contains(seg) || depth >= MAX_DEPTH {
                return cur;
            }
            if let Some(import) = module
                .imports
                .iter()
                .find(|i| i.binding.as_ref() == Some(seg))
            {
                return match self.anchor(&cur, &import.path, depth + 1) {
                    Some(mut to) => {
                        to.extend(abs[i + 1..].iter().cloned());
                        self.resolve(&to, depth + 1)
                    }
                    None => cur, // re-exports something from outside the crate
                };
            }
            for glob in module.imports.iter().filter(|i| i.binding.is_none()) {
                let Some(src) = self.anchor(&cur, &glob.path, depth + 1) else {
                    continue;
                };
                let src = self.resolve(&src, depth + 1);
                if src != cur && self.has_name(&src, seg) {
                    let mut to = src;
                    to.extend(abs[i..].iter().cloned());
                    return self.resolve(&to, depth + 1);
                }
            }
            return cur;
        }
        cur
    }

    fn has_name(&self, module: &[String], name: &str) -> bool {
        self.modules.get(module).is_some_and(|m| {
            m.children.contains(name)
                || m.items.contains(name)
                || m.imports.iter().any(|i| i.binding.as_deref() == Some(name))
        })
    }

    /// The file module a module is written in.
    fn file_of(&self, module: &[String]) -> ModPath {
        (0..=module.len())
            .rev()
            .find_map(|n| self.modules.get(&module[..n]).map(|m| m.file.clone()))
            .unwrap_or_default()
    }
}

/// Scans the files (paths relative to `src/`, with `/`) and checks the layering.
fn check(files: &BTreeMap<String, String>) -> Findings {
    let missing_layers = LAYERS
        .into_iter()
        .filter(|l| !files.keys().any(|f| f.starts_with(&format!("{l}/"))))
        .collect();
    let mut findings = Findings {
        missing_layers,
        ..Findings::default()
    };

    let mut modules = BTreeMap::new();
    let mut refs = Vec::new();
    let mut test_modules = Vec::new();
    for (file, text) in files {
        let ast = match syn::parse_file(text) {
            Ok(ast) => ast,
            Err(e) => {
                findings.unparsable.push(format!("{file}: {e}"));
                continue;
            }
        };
        let file_module = module_of(file);
        let mut scan = Scan {
            file,
            file_module: file_module.clone(),
            scope: file_module.clone(),
            modules: &mut modules,
            refs: &mut refs,
            test_modules: &mut test_modules,
        };
        let _ = scan.module();
        scan.visit_file(&ast);
    }
    // Each file is a child of the module above it, declared or not (a file that failed to parse,
    // a `mod` behind a macro), so paths resolve by the tree.
    for file in files.keys() {
        let mut m = module_of(file);
        while let Some(name) = m.pop() {
            let parent = modules.entry(m.clone()).or_insert_with(|| Module {
                file: m.clone(),
                ..Module::default()
            });
            let _ = parent.children.insert(name);
        }
    }
    // Files of `#[cfg(test)] mod x;` and their children are test code.
    let is_test = |m: &[String]| test_modules.iter().any(|t| m.starts_with(t));
    modules.retain(|m, _| !is_test(m));
    refs.retain(|r| !is_test(&module_of(&r.file)));
    let krate = Crate { modules };

    for file in files.keys() {
        let m = module_of(file);
        let root = m.first().is_none_or(|f| ROOT_MODULES.contains(&f.as_str()));
        if !root && layer_rank(&m).is_none() && !is_test(&m) {
            findings.outside.push(file.clone());
        }
    }

    let mut edges: Vec<Edge> = Vec::new();
    for r in &refs {
        // A path starting with a name a `use` brought in (`State::Open` after `use
        // crate::core::machine::State`) is that `use`'s edge again.
        let first = r.path[0].as_str();
        let rooted = matches!(first, "crate" | "$crate" | "super" | "self")
            || krate
                .modules
                .get(&r.scope)
                .is_some_and(|m| m.children.contains(first));
        if !rooted {
            continue;
        }
        let Some(abs) = krate.anchor(&r.scope, &r.path, 0) else {
            continue;
        };
        let from = module_of(&r.file);
        let to = krate.file_of(&krate.resolve(&abs, 0));
        let edge = Edge {
            file: r.file.clone(),
            line: r.line,
            path: r.path.join("::"),
            from,
            to,
        };
        if let Some(rank) = layer_rank(&edge.from) {
            let into_layer = layer_rank(&abs).is_some();
            // `#[macro_export]` macros only ever live at the root: `crate::name!` is fine.
            let root_macro = r.is_macro && abs.len() == 1;
            if !into_layer && !root_macro {
                findings.through_root.push(Edge {
                    to: abs.clone(),
                    ..edge.clone()
                });
            } else if layer_rank(&edge.to).is_some_and(|to| to > rank) {
                findings.upward.push(edge.clone());
            }
        }
        if edge.to != edge.from
            && !edge.to.starts_with(&edge.from)
            && !edge.from.starts_with(&edge.to)
        {
            edges.push(edge);
        }
    }
    findings
        .upward
        .dedup_by(|a, b| (&a.file, a.line, &a.path) == (&b.file, b.line, &b.path));
    findings
        .through_root
        .dedup_by(|a, b| (&a.file, a.line, &a.path) == (&b.file, b.line, &b.path));
    findings.cycles = cycles(&edges);
    findings
}

/// Shortest cycles of the module graph, enough of them that every edge on a cycle is on one
/// printed (one loop through a shared module would hide the others).
fn cycles(edges: &[Edge]) -> Vec<Vec<Edge>> {
    // The first edge written between two modules stands for all of them.
    let mut graph: BTreeMap<&ModPath, BTreeMap<&ModPath, &Edge>> = BTreeMap::new();
    for e in edges {
        let _ = graph.entry(&e.from).or_default().entry(&e.to).or_insert(e);
        let _ = graph.entry(&e.to).or_default();
    }
    // The shortest path of edges from one module to another.
    let path = |from: &ModPath, to: &ModPath| -> Option<Vec<&Edge>> {
        let mut prev: BTreeMap<&ModPath, &Edge> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(m) = queue.pop_front() {
            for (&next, &edge) in &graph[m] {
                if next == from || prev.contains_key(next) {
                    continue;
                }
                let _ = prev.insert(next, edge);
                if next == to {
                    let mut hops = vec![edge];
                    while hops[hops.len() - 1].from != *from {
                        hops.push(prev[&hops[hops.len() - 1].from]);
                    }
                    hops.reverse();
                    return Some(hops);
                }
                queue.push_back(next);
            }
        }
        None
    };
    let mut covered: BTreeSet<(&ModPath, &ModPath)> = BTreeSet::new();
    let mut out = Vec::new();
    for (&from, targets) in &graph {
        for (&to, &edge) in targets {
            if covered.contains(&(from, to)) {
                continue;
            }
            let Some(back) = path(to, from) else { continue };
            let cycle: Vec<&Edge> = std::iter::once(edge).chain(back).collect();
            covered.extend(cycle.iter().map(|e| (&e.from, &e.to)));
            out.push(cycle.into_iter().cloned().collect());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The scanner on small trees: it catches what it claims to
// ---------------------------------------------------------------------------------------------

/// A tree with all five layers, plus the given files.
fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = [
        (
            "lib.rs",
            "mod core; mod notify; mod breaker; mod store; mod runtime; pub mod __private;",
        ),
        ("__private.rs", ""),
        ("core/mod.rs", ""),
        ("notify/mod.rs", ""),
        ("breaker/mod.rs", ""),
        ("store/mod.rs", ""),
        ("runtime/mod.rs", ""),
    ]
    .into_iter()
    .map(|(f, t)| (f.to_owned(), t.to_owned()))
    .collect();
    for (f, t) in files {
        let _ = out.insert((*f).to_owned(), (*t).to_owned());
    }
    out
}

fn names(m: &[String]) -> String {
    m.join("::")
}

#[test]
fn a_clean_tree_passes() {
    let findings = check(&tree(&[
        ("core/mod.rs", "pub mod config;\npub mod machine;"),
        ("core/config.rs", "pub struct Config;"),
        (
            "core/machine.rs",
            "use super::config::Config;\npub fn step(_: &Config) {}",
        ),
        (
            "breaker/mod.rs",
            "use crate::core::machine;\npub fn call() { machine::step(todo!()) }",
        ),
        (
            "runtime/mod.rs",
            "pub fn go() { crate::breaker::call(); crate::core::machine::step(todo!()); }",
        ),
    ]));
    assert!(findings.is_clean(), "{findings}");
}

#[test]
fn flat_tree_fails_for_missing_layer_folders() {
    let flat: BTreeMap<String, String> = [("lib.rs", "mod config;"), ("config.rs", "")]
        .into_iter()
        .map(|(f, t)| (f.to_owned(), t.to_owned()))
        .collect();
    let findings = check(&flat);
    assert_eq!(findings.missing_layers, LAYERS);
    assert!(findings.to_string().contains(
        "expected layer folders core/, notify/, breaker/, store/, runtime/ under breaker-runtime/src"
    ));
    assert_eq!(findings.outside, ["config.rs"]);
}

#[test]
fn upward_import_is_listed_with_file_and_line() {
    let findings = check(&tree(&[
        ("store/mod.rs", "pub struct Store;"),
        ("core/mod.rs", "pub mod config;"),
        ("core/config.rs", "// why\n\nuse crate::store::Store;\n"),
    ]));
    let [edge] = &findings.upward[..] else {
        panic!("{findings}")
    };
    assert_eq!((edge.file.as_str(), edge.line), ("core/config.rs", 3));
    assert_eq!(
        (names(&edge.from).as_str(), names(&edge.to).as_str()),
        ("core::config", "store")
    );
    assert!(
        findings
            .to_string()
            .contains("upward import: core/config.rs:3 `crate::store::Store` (core → store)")
    );
}

#[test]
fn cycle_between_sibling_files_is_found() {
    let findings = check(&tree(&[
        ("store/mod.rs", "pub mod memory;\npub mod redis;"),
        (
            "store/memory.rs",
            "pub struct Memory;\nfn f() { crate::store::redis::Redis::new(); }",
        ),
        ("store/redis/mod.rs", "pub mod sync;\npub use sync::Redis;"),
        (
            "store/redis/sync.rs",
            "use crate::store::memory::Memory;\npub struct Redis;",
        ),
    ]));
    assert!(findings.upward.is_empty(), "{findings}");
    let [cycle] = &findings.cycles[..] else {
        panic!("{findings}")
    };
    let hops: Vec<String> = cycle
        .iter()
        .map(|e| format!("{} -> {}", names(&e.from), names(&e.to)))
        .collect();
    // `crate::store::redis::Redis` is re-exported by `store/redis/mod.rs` from `sync`.
    assert_eq!(
        hops,
        [
            "store::memory -> store::redis::sync",
            "store::redis::sync -> store::memory"
        ]
    );
    assert!(
        findings
            .to_string()
            .contains("import cycle: store::memory → store::redis::sync → store::memory"),
        "{findings}"
    );
}

#[test]
fn cycle_across_layers_is_found() {
    let findings = check(&tree(&[
        ("store/mod.rs", "pub mod redis;"),
        ("store/redis.rs", "use crate::runtime::registry::Handle;"),
        ("runtime/mod.rs", "pub mod registry;"),
        (
            "runtime/registry.rs",
            "pub struct Handle;\nfn f() { crate::store::redis::connect(); }",
        ),
    ]));
    assert_eq!(findings.upward.len(), 1, "{findings}");
    assert_eq!(findings.cycles.len(), 1, "{findings}");
}

#[test]
fn parent_and_child_importing_each_other_is_not_a_cycle() {
    let findings = check(&tree(&[
        (
            "store/mod.rs",
            "mod memory;\npub use memory::MemoryStore;\npub trait Store {}",
        ),
        (
            "store/memory.rs",
            "use super::*;\npub struct MemoryStore;\nimpl Store for MemoryStore {}",
        ),
    ]));
    assert!(findings.is_clean(), "{findings}");
}

#[test]
fn super_super_paths_resolve_against_the_module() {
    let findings = check(&tree(&[
        ("core/mod.rs", "pub mod clock;"),
        ("core/clock.rs", "pub struct Clock;"),
        ("notify/mod.rs", "pub mod http;"),
        ("notify/http/mod.rs", "pub mod webhook;"),
        (
            "notify/http/webhook.rs",
            "use super::super::super::core::clock::Clock;\n\
             fn f() { super::super::super::breaker::Breaker::new(); }",
        ),
        ("breaker/mod.rs", "pub struct Breaker;"),
    ]));
    let [edge] = &findings.upward[..] else {
        panic!("{findings}")
    };
    assert_eq!(
        (edge.file.as_str(), edge.line),
        ("notify/http/webhook.rs", 2)
    );
    assert_eq!(names(&edge.to), "breaker");
    // `super` past the crate root is not a path into the crate.
    let findings = check(&tree(&[("core/mod.rs", "use super::super::store::Store;")]));
    assert!(findings.is_clean(), "{findings}");
}

#[test]
fn grouped_multi_line_use_reports_each_leaf_on_its_line() {
    let findings = check(&tree(&[
        ("core/mod.rs", "pub mod config;"),
        ("core/config.rs", "pub struct Config;"),
        ("runtime/mod.rs", "pub mod registry;\npub mod builder;"),
        ("runtime/registry.rs", "pub struct Registry;"),
        ("runtime/builder.rs", ""),
        (
            "breaker/mod.rs",
            "use crate::{\n    core::config::Config,\n    runtime::{\n        registry::Registry,\n        builder,\n    },\n};",
        ),
    ]));
    let lines: Vec<(usize, String)> = findings
        .upward
        .iter()
        .map(|e| (e.line, names(&e.to)))
        .collect();
    assert_eq!(
        lines,
        [
            (4, "runtime::registry".to_owned()),
            (5, "runtime::builder".to_owned())
        ]
    );
}

#[test]
fn crate_root_reexports_and_private_are_refused_inside_layers() {
    let findings = check(&tree(&[
        (
            "lib.rs",
            "mod core; mod notify; mod breaker; mod store; mod runtime; pub mod __private;\npub use core::Config;",
        ),
        ("core/mod.rs", "pub struct Config;"),
        ("__private.rs", "pub trait BreakerResult {}"),
        (
            "breaker/mod.rs",
            "use crate::Config;\nfn f<R: crate::__private::BreakerResult>() { crate::some_macro!(); }",
        ),
    ]));
    let refused: Vec<(usize, String)> = findings
        .through_root
        .iter()
        .map(|e| (e.line, e.path.clone()))
        .collect();
    // `crate::some_macro!` is a `#[macro_export]` macro: those only live at the root.
    assert_eq!(
        refused,
        [
            (1, "crate::Config".to_owned()),
            (2, "crate::__private::BreakerResult".to_owned())
        ]
    );
    // The root files themselves may import anything.
    let findings = check(&tree(&[(
        "__private.rs",
        "pub use crate::runtime::Handle;\nuse crate::Config;",
    )]));
    assert!(findings.is_clean(), "{findings}");
}

#[test]
fn paths_inside_macros_and_pub_use_count() {
    let findings = check(&tree(&[
        (
            "core/mod.rs",
            "pub(crate) use crate::notify::Event;\nfn f() { assert!(crate::store::ok()); }",
        ),
        ("notify/mod.rs", "pub struct Event;"),
        ("store/mod.rs", "pub fn ok() -> bool { true }"),
    ]));
    let to: Vec<String> = findings
        .upward
        .iter()
        .map(|e| format!("{}:{}", e.line, names(&e.to)))
        .collect();
    assert_eq!(to, ["1:notify", "2:store"]);
}

#[test]
fn test_code_may_import_anything() {
    let findings = check(&tree(&[
        ("core/mod.rs", "pub mod machine;\n#[cfg(test)]\nmod tests;"),
        ("core/tests.rs", "use crate::runtime::Runtime;"),
        (
            "core/machine.rs",
            "#[cfg(test)]\nmod tests { use crate::runtime::Runtime; }\n\
             #[cfg(all(test, feature = \"redis\"))]\nfn helper() { crate::store::x(); }\n\
             #[cfg(not(test))]\nfn real() { crate::store::x(); }",
        ),
    ]));
    let [edge] = &findings.upward[..] else {
        panic!("{findings}")
    };
    assert_eq!(edge.line, 6);
}

#[test]
fn files_outside_the_layers_are_listed() {
    let findings = check(&tree(&[
        ("timeout.rs", ""),
        ("redis.rs", "pub use crate::store::X;"),
    ]));
    assert_eq!(findings.outside, ["timeout.rs"]);
}
