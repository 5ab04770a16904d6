//! Terminal output: colour and a spinner only when stdout is a terminal, plain text
//! otherwise (pipes, CI logs, tests).

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How the demo writes to stdout.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    color: bool,
    tty: bool,
}

impl Ui {
    /// Colour and spinner when stdout is a terminal (and `NO_COLOR` is not set).
    pub fn detect() -> Self {
        let tty = std::io::stdout().is_terminal();
        Ui {
            tty,
            color: tty && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// Plain text, no spinner.
    pub fn plain() -> Self {
        Ui {
            color: false,
            tty: false,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Bold.
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    /// Dimmed.
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    /// Green.
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    /// Red.
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    /// Yellow.
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    /// Cyan.
    pub fn cyan(&self, s: &str) -> String {
        self.paint("36", s)
    }

    /// A step heading.
    pub fn step(&self, n: usize, total: usize, title: &str) {
        println!();
        println!("{}", self.bold(&self.cyan(&format!("[{n}/{total}] {title}"))));
    }

    /// An indented line.
    pub fn line(&self, s: impl AsRef<str>) {
        println!("  {}", s.as_ref());
    }

    /// A success line.
    pub fn ok(&self, s: impl AsRef<str>) {
        println!("  {} {}", self.green("✓"), s.as_ref());
    }

    /// A failure line.
    pub fn bad(&self, s: impl AsRef<str>) {
        println!("  {} {}", self.red("✗"), s.as_ref());
    }

    /// A note (dimmed).
    pub fn note(&self, s: impl AsRef<str>) {
        println!("  {}", self.dim(s.as_ref()));
    }

    /// Awaits `fut`, showing a spinner with `label()` on a terminal; returns its
    /// output and how long it took. Prints nothing when stdout is not a terminal.
    pub async fn spin<F: Future>(&self, label: impl Fn() -> String, fut: F) -> (F::Output, Duration) {
        const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
        let start = Instant::now();
        if !self.tty {
            let out = fut.await;
            return (out, start.elapsed());
        }
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(Duration::from_millis(80));
        let mut frame = 0;
        let out = loop {
            tokio::select! {
                out = &mut fut => break out,
                _ = tick.tick() => {
                    let f = self.cyan(FRAMES[frame % FRAMES.len()]);
                    frame += 1;
                    print!("\r\x1b[2K  {f} {} {}", label(), self.dim(&format!("{:.1}s", start.elapsed().as_secs_f64())));
                    let _ = std::io::stdout().flush();
                }
            }
        };
        print!("\r\x1b[2K");
        let _ = std::io::stdout().flush();
        (out, start.elapsed())
    }

    /// The run's last lines: a blank line, `verdict` in bold (green if it passed, red
    /// if not), and how long the run took.
    pub fn verdict(&self, passed: bool, verdict: &str, elapsed: Duration) {
        println!();
        let v = if passed {
            self.green(&self.bold(verdict))
        } else {
            self.red(&self.bold(verdict))
        };
        println!("{v}");
        println!("{}", self.dim(&format!("finished in {}", secs(elapsed))));
    }

    /// Prints a table: a header row and rows of cells; `style(row, col, text)` may
    /// colour a cell (widths are computed on the plain text).
    pub fn table(&self, header: &[&str], rows: &[Vec<String>], style: impl Fn(usize, usize, &str) -> String) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
        let head: Vec<String> = header.iter().zip(&widths).map(|(h, w)| pad(h, *w)).collect();
        println!("  {}", self.bold(head.join("  ").trim_end()));
        let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
        println!("  {}", self.dim(&rule.join("  ")));
        for (r, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| {
                    let padding = " ".repeat(widths[c].saturating_sub(cell.chars().count()));
                    format!("{}{padding}", style(r, c, cell))
                })
                .collect();
            println!("  {}", cells.join("  ").trim_end());
        }
    }
}

/// `1.23 s` or `456 ms`.
pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}
