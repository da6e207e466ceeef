import Foundation
import TrickbookData
import TrickbookDisplay
import TrickbookFiles
import TrickbookScript
import TrickbookTensor
import TrickbookTraining

/// Seeing what happens: charts, tables, progress bars and image grids. The drawing itself is in
/// TrickbookDisplay (charts, tables) and TrickbookData (image grids); these rows turn script
/// values into what they draw.
enum DisplayLibrary: Library {
    static let rows: [Row] = [
        Row(
            "plot(data, to = nil, title = \"\", steps = nil)",
            doc: """
                A line chart of a schedule (its per-step rates), a list of numbers or a history, as an SVG file and \
                in the terminal.
                """,
            example: "plot(lr, to: \"lr.svg\")", plot),
        Row(
            "progress(total, label = \"\")",
            doc: "A progress bar: p.update(n, loss: x, acc: y) after each batch, p.close() at the end.",
            example: "let p = progress(len(batches), \"epoch 1\")"
        ) { a in
            .host(
                Progress(
                    ProgressBar(total: try a.int("total"), label: try a.string("label")), output: a.interpreter.output,
                    display: a.interpreter.display))
        },
        Row(
            "table(rows, columns = nil, markdown = false, to = nil)",
            doc: "Rows (records or lists) as a table: printed as aligned text (or Markdown), drawn as a table under a notebook cell; `to` also writes its text to a file.",
            example: """
                print(table([{\"trick\": \"baseline\", \"top1\": 0.9012}, {\"trick\": \"+ cosine\", \"top1\": \
                0.9071}]))
                """, table),
        Row(
            "show_batch(dataset, transform = nil, count = 16, to = \"batch.png\", seed = nil)",
            doc: "Writes a PNG grid of images with their labels.",
            example: "show_batch(train, transform: augment, to: \"batch.png\")", showBatch),
        Row(
            "show_images(images, captions = nil, to = \"images.png\", columns = 8)",
            doc: """
                Writes a PNG grid of a tensor of images [N, C, H, W] (a batch, or mixup's mixed images), each scaled \
                by its own range, with optional captions.
                """,
            example: "show_images(mixup(batch, 10, seed: 1).images, to: \"mixed.png\")", showImages),
        Row(
            "show_predictions(model, dataset, transform = nil, count = 16, to = \"predictions.png\", seed = nil)",
            doc: """
                A PNG grid of images captioned with the model's prediction (and the truth when it differs); returns \
                how many were right.
                """,
            example: "show_predictions(model, test, count: 8, to: \"predictions.png\")", showPredictions),
    ]

    static let types: [HostType] = [Progress.type, TableBox.type]

    static func plot(_ a: Args) throws -> Value {
        let steps = try a.isNil("steps") ? nil : try a.int("steps", in: 1...TrainingLibrary.maxValues)
        let s = try series(try a.value("data"), steps: steps)
        let title = try a.string("title")
        if let path = try a.stringOrNil("to") {
            do { try writeAtomically(Chart.svg(s, title: title), to: path) } catch {
                throw ScriptError("plot(): \(error)")
            }
        }
        if a.interpreter.showsRichOutput {
            a.interpreter.show(.svg(Chart.svg(s, title: title)))
        } else {
            a.interpreter.output(Chart.terminal(s))
        }
        return .nil_
    }

    /// Series from a schedule, a list of numbers, a list of records (a history) or a map of lists.
    static func series(_ v: Value, steps: Int?) throws -> [Series] {
        switch v {
        case .host(let s as ScheduleBox):
            return [Series("lr", try s.schedule.values(steps ?? s.steps ?? 100).map(Double.init))]
        case .list(let l):
            if l.items.allSatisfy({ $0.number != nil }) { return [Series("value", l.items.compactMap(\.number))] }
            var keys: [String] = []
            // Every numeric field but the epoch number, which is the x axis.
            for case .map(let m) in l.items {
                for case .string(let k) in m.keys where !keys.contains(k) && k != "epoch" { keys.append(k) }
            }
            return keys.compactMap { k in
                let ys = l.items.compactMap { item -> Double? in
                    guard case .map(let m) = item, let v = try? m.get(.string(k)) else { return nil }
                    return v.number
                }
                return ys.isEmpty ? nil : Series(k, ys)
            }
        case .map(let m):
            return zip(m.keys, m.values).compactMap { k, v in
                guard case .string(let name) = k, case .list(let l) = v else { return nil }
                let ys = l.items.compactMap(\.number)
                return ys.isEmpty ? nil : Series(name, ys)
            }
        default:
            throw ScriptError(
                "plot(): argument 'data' must be a schedule, a list of numbers or a history, got \(v.typeName)")
        }
    }

    static func table(_ a: Args) throws -> Value {
        let items = try a.list("rows")
        var columns: [String] = try a.isNil("columns") ? [] : a.list("columns").map(\.str)
        if columns.isEmpty {
            // Every key of the records, in the order they first appear.
            for case .map(let m) in items { for k in m.keys where !columns.contains(k.str) { columns.append(k.str) } }
        }
        var rows: [[Cell]] = []
        for (n, item) in items.enumerated() {
            switch item {
            case .map(let m): rows.append(try columns.map { cell(try m.get(.string($0)) ?? .nil_) })
            case .list(let l):
                if columns.isEmpty { columns = (1...max(1, l.items.count)).map(String.init) }
                rows.append(l.items.map(cell))
            default: throw a.fail("rows", "must be a list of records or of lists, item \(n) is \(item.typeName)")
            }
        }
        guard !columns.isEmpty else { throw a.fail("rows", "has no columns: give records, lists or `columns`") }
        let text = Table.text(rows, columns: columns, markdown: try a.bool("markdown"))
        if let path = try a.stringOrNil("to") {
            do { try writeAtomically(text + "\n", to: path) } catch { throw ScriptError("table(): \(error)") }
        }
        return .host(TableBox(columns: columns, rows: rows.map { $0.map(\.text) }, text: text))
    }

    static func cell(_ v: Value) -> Cell {
        switch v {
        case .int(let n): return .int(n)
        case .float(let d): return .number(d)
        case .nil_: return .empty
        default: return .text(v.str)
        }
    }

    static func showBatch(_ a: Args) throws -> Value {
        let d = try a.host("dataset", DatasetBox.self).dataset
        let t = try DataLibrary.transformOrNil(a)
        let seed = try a.seed()
        var images: [Image] = []
        var captions: [String] = []
        for k in 0..<min(max(0, try a.int("count")), d.count) {
            var (im, label) = try d.item(k)
            if let t { im = try t(im, Generator(seed: seed &+ UInt64(k))) }
            images.append(im)
            captions.append(className(d, label))
        }
        return try grid(images, captions, columns: 8, a)
    }

    static func showImages(_ a: Args) throws -> Value {
        let x = try a.tensor("images")
        guard x.rank == 4, x.shape.allSatisfy({ $0 > 0 }), x.shape[2] <= DataLibrary.side,
            x.shape[3] <= DataLibrary.side
        else {
            throw a.fail(
                "images",
                "must be non-empty images [N, C, H, W], at most \(DataLibrary.side) pixels a side, got \(x.shape)")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let captions = try a.isNil("captions") ? [String](repeating: "", count: n) : a.list("captions").map(\.str)
        guard captions.count == n else {
            throw a.fail("captions", "must have one caption per image (\(n)), got \(captions.count)")
        }
        let v = x.scalars
        let size = c * h * w
        let images = (0..<n).map { k in
            Image(channels: c, height: h, width: w, pixels: Array(v[(k * size)..<((k + 1) * size)]))
        }
        return try grid(images, captions, columns: try a.int("columns", in: 1...1000), a)
    }

    static func showPredictions(_ a: Args) throws -> Value {
        let d = try a.host("dataset", DatasetBox.self).dataset
        let p = try predictions(
            try a.host("model", ModelBox.self).model, d, transform: try DataLibrary.transformOrNil(a),
            count: try a.int("count"), seed: try a.seed())
        let captions = p.map {
            $0.predicted == $0.label
                ? className(d, $0.predicted) : "\(className(d, $0.predicted)) (\(className(d, $0.label)))"
        }
        _ = try grid(p.map(\.image), captions, columns: 8, a)
        return .int(p.filter { $0.predicted == $0.label }.count)
    }

    static func className(_ d: any Dataset, _ k: Int) -> String {
        d.classNames.indices.contains(k) ? d.classNames[k] : String(k)
    }

    /// Writes the grid to the `to` argument's path, shows it under the cell, and returns the path.
    static func grid(_ images: [Image], _ captions: [String], columns: Int, _ a: Args) throws -> Value {
        let path = try a.string("to")
        let png = try gridPNG(images, captions: captions, columns: columns, name: path)
        do { try writeAtomically(Data(png), to: path) } catch { throw ScriptError("\(a.callee.name)(): \(error)") }
        a.interpreter.show(.png(png, alt: "\(images.count) images (\(path))"))
        return .string(path)
    }
}

/// What table() gives: its text, printed as it is on a terminal and drawn as a table under a
/// notebook cell, once, whether it is printed or is the cell's value.
final class TableBox: TypedHost {
    let columns: [String], rows: [[String]], text: String
    init(columns: [String], rows: [[String]], text: String) { (self.columns, self.rows, self.text) = (columns, rows, text) }

    static let type: HostType = {
        let t = HostType("table", doc: "A table made by table(): its text form, and a table under a notebook cell.")
        t.describe = { ($0 as? TableBox)?.text ?? "" }
        t.rich = { o in (o as? TableBox).map { .table(columns: $0.columns, rows: $0.rows) } }
        t.property(TableBox.self, "text") { o in .string(o.text) }
        t.length = { ($0 as? TableBox)?.rows.count ?? 0 }
        return t
    }()
}

/// A progress bar: redrawn in place on a terminal, a line every few seconds otherwise.
final class Progress: TypedHost {
    let bar: ProgressBar
    let output: (String) -> Void
    /// A notebook's rich output: the bar is drawn under the cell instead of on the terminal.
    let display: ((Display) -> Void)?
    let tty = isatty(1) == 1
    let id = Progress.nextID()
    init(_ bar: ProgressBar, output: @escaping (String) -> Void, display: ((Display) -> Void)?) {
        self.bar = bar
        self.output = output
        self.display = display
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var lastID = 0
    private static func nextID() -> Int {
        lock.lock()
        defer { lock.unlock() }
        lastID &+= 1
        return lastID
    }

    func draw() {
        display?(.progress(id: id, text: bar.text, fraction: Double(bar.done) / Double(bar.total)))
    }

    static let type: HostType = {
        let t = HostType("progress", doc: "A progress bar with images/s, ETA and running loss and accuracy.")
        t.method(
            Progress.self, "update(n = 1, images = 0, loss = nil, acc = nil)",
            doc: "Advances the bar by n steps of `images` images.",
            example: "p.update(1, images: 128, loss: 0.71)"
        ) { p, a in
            p.bar.advance(
                try a.int("n"), images: try a.int("images"), loss: try a.isNil("loss") ? nil : try a.number("loss"),
                acc: try a.isNil("acc") ? nil : try a.number("acc"))
            if p.display != nil {
                p.draw()
            } else if p.tty {
                FileHandle.standardOutput.write(("\r\u{1b}[K" + p.bar.text).data(using: .utf8) ?? Data())
            } else if p.bar.lineDue() {
                p.output(p.bar.text)
            }
            return .nil_
        }
        t.method(Progress.self, "close()", doc: "Ends the bar with a final line.", example: "p.close()") { p, _ in
            if p.display != nil { p.draw(); return .nil_ }
            if p.tty { FileHandle.standardOutput.write("\r\u{1b}[K".data(using: .utf8) ?? Data()) }
            p.output(p.bar.text)
            return .nil_
        }
        t.describe(Progress.self) { o in o.bar.text }
        return t
    }()
}
