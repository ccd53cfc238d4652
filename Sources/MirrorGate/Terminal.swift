#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Standard output as the CLI commands use it: whether it is a terminal (for colour and
/// lines redrawn in place), its width, and unbuffered writes (so redrawn lines and final
/// lines never interleave out of order).
struct Terminal: Sendable {
    /// Whether standard output is a terminal.
    let isTTY: Bool

    /// Standard output.
    static let standardOutput = Terminal(isTTY: isatty(STDOUT_FILENO) == 1)

    /// Columns of the terminal; 80 when unknown or not a terminal.
    var width: Int {
        guard isTTY else { return 80 }
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    /// Writes `text` as is.
    func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Writes `text` and a newline.
    func line(_ text: String) {
        write(text + "\n")
    }

    /// Replaces the current line with `text` (no newline), on a terminal only.
    func redraw(_ text: String) {
        guard isTTY else { return }
        write("\r\u{1B}[2K" + text)
    }

    /// Clears the current line, on a terminal only.
    func clearLine() {
        guard isTTY else { return }
        write("\r\u{1B}[2K")
    }

    /// ANSI colours, used only on a terminal.
    enum Color: String, Sendable {
        case red = "31"
        case green = "32"
        case yellow = "33"
        case dim = "2"
        case bold = "1"
    }

    /// `text` in `color` on a terminal, plain otherwise.
    func paint(_ text: String, _ color: Color?) -> String {
        guard isTTY, let color else { return text }
        return "\u{1B}[\(color.rawValue)m\(text)\u{1B}[0m"
    }
}
