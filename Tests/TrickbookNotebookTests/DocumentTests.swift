import Foundation
import Testing
@testable import TrickbookNotebook
import TrickbookAssets

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite struct DocumentTests {
    /// Every notebook of the project, and files with odd edges, load and save back byte for byte.
    @Test func aNotebookLoadedAndSavedIsTheSameBytes() throws {
        let folder = repository.appendingPathComponent("notebooks")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".tb") }
        #expect(names.count >= 13)
        var texts = try names.map { try String(contentsOf: folder.appendingPathComponent($0), encoding: .utf8) }
        texts += ["", "\n", "\n\n# %%\nx", "print(1)", "print(1)\n# %% A\nprint(2)\n", "# %%", "# %%\n", "  # %% [markdown] T\n# hi\n\n",
                  "a\r\nb\r\n# %%\r\nc", "# %% one\n# %% two\n# %%"]
        for t in texts { #expect(Document(text: t).text == t) }
    }

    @Test func cellsAreTheRunnersCells() {
        let d = Document(text: "let a = 1\n# %% [markdown] Title\n# # Head\n# text\n# %% Train\nprint(a)\nprint(2)\n")
        #expect(d.cells.map(\.isMarkdown) == [false, true, false])
        #expect(d.cells.map(\.title) == ["", "Title", "Train"])
        #expect(d.cells[1].prose == "# Head\ntext")
        // File lines: the third cell's source starts on line 6.
        #expect(d.firstLine(of: d.cells[2].id) == 6)
        #expect(d.firstLine(of: d.cells[0].id) == 1)
    }

    /// Edits keep the file parseable into the same cells: adding, moving (the first cell without a
    /// marker gets one when it moves down) and deleting.
    @Test func editsParseBack() {
        var d = Document(text: "first()\n# %% B\nb()\n# %% C\nc()")
        let a = d.cells[0].id, c = d.cells[2].id
        let new = d.add(after: a, markdown: true)
        d.edit(new, source: "# some prose")
        d.move(a, by: 2)
        d.delete(c)
        d.edit(d.cells[0].id, source: "b2()")
        let again = Document(text: d.text)
        #expect(again.cells.map(\.source) == d.cells.map(\.source))
        #expect(again.cells.map(\.isMarkdown) == d.cells.map(\.isMarkdown))
        #expect(d.cells.map(\.source) == ["b2()", "b()", "first()"])
        #expect(d.cells.map(\.isMarkdown) == [true, false, false])
    }

    /// The binary carries the stdlib and the page as they are in the repository.
    @Test func embeddedFilesAreTheRepositorysFiles() throws {
        let stdlib = repository.appendingPathComponent("stdlib")
        let modules = try FileManager.default.contentsOfDirectory(atPath: stdlib.path).filter { $0.hasSuffix(".tb") }
        #expect(Set(modules) == Set(Assets.stdlib.keys), "every stdlib/*.tb must be listed in Sources/CAssets/assets.c")
        for m in modules {
            #expect(Assets.stdlib[m] == (try String(contentsOf: stdlib.appendingPathComponent(m), encoding: .utf8)))
        }
        for f in ["web/notebook.js", "web/notebook.css"] {
            #expect(Assets.files[f] == (try String(contentsOf: repository.appendingPathComponent(f), encoding: .utf8)))
        }
    }
}
