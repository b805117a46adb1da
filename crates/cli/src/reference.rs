//! The CLI reference of the book (`docs/src/cli-reference.md`), generated from the clap
//! definitions so it cannot drift from the binary: `tollgate cli-reference` prints it,
//! `make docs` writes it, and a test fails when the committed page differs.

use clap::CommandFactory;

/// The width help is wrapped to, whatever the terminal.
const WIDTH: usize = 100;

/// Every command's `--help`, as Markdown: one section per command, in clap's order.
pub fn markdown() -> String {
    let mut root = crate::Cli::command()
        .term_width(WIDTH)
        .max_term_width(WIDTH);
    root.build();
    let mut out = String::from(
        "# CLI reference\n\nGenerated from the `tollgate` binary's own help (`tollgate cli-reference`); `make docs` rewrites this page.\n",
    );
    section(&mut out, &root, "tollgate");
    out
}

/// Appends `command`'s help (named `path`) and then its subcommands'.
fn section(out: &mut String, command: &clap::Command, path: &str) {
    let mut command = command.clone().mut_args(|a| a.hide_env_values(true));
    let help = command.render_long_help().to_string();
    let help: Vec<&str> = help.lines().map(str::trim_end).collect();
    out.push_str(&format!(
        "\n## `{path}`\n\n```text\n{}\n```\n",
        help.join("\n").trim_end()
    ));
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        section(out, sub, &format!("{path} {}", sub.get_name()));
    }
}
