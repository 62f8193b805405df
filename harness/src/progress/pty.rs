//! A terminal that is a file (a pty the console writes to instead of stdout), as indicatif's
//! draw target: the usual ANSI cursor moves, its width asked of the terminal.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, PoisonError};

use indicatif::TermLike;

/// Columns assumed when the terminal does not say.
const DEFAULT_WIDTH: u16 = 80;

/// The console's terminal file, shared with the console's own writes.
#[derive(Debug)]
pub(crate) struct FileTerm {
    file: Arc<Mutex<File>>,
}

impl FileTerm {
    pub(crate) fn new(file: Arc<Mutex<File>>) -> FileTerm {
        FileTerm { file }
    }

    fn write(&self, text: &str) -> io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(text.as_bytes())
    }
}

impl TermLike for FileTerm {
    fn width(&self) -> u16 {
        let file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ fills one winsize the pointer points at; the descriptor is ours.
        let result = unsafe { libc::ioctl(file.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        if result == 0 && size.ws_col > 0 {
            size.ws_col
        } else {
            DEFAULT_WIDTH
        }
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}A"))
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}B"))
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}C"))
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}D"))
    }

    fn write_line(&self, line: &str) -> io::Result<()> {
        self.write(&format!("{line}\n"))
    }

    fn write_str(&self, text: &str) -> io::Result<()> {
        self.write(text)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.write("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        self.file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}
