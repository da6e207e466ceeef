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
            "plot(data, to = nil, title = \"\", steps = nil, x = nil, y = nil, log = false, log_x = false, fields = nil, by = \"epoch\")",
            doc: """
                A line chart, as an SVG file, under a notebook cell and in the terminal, of a schedule (its rate at \
                each step), a list of numbers, a history (each number field against its `by` field, the epoch \
                from 1 by default; `lr` only when `fields` names it), or a map of names to any of these, drawn \
                together to compare them. `x` and `y` title the axes (each kind has its own default); `log` and \
                `log_x` make the y and the x axis logarithmic.
                """,
            example: "plot({\"step\": step_decay(0.1, [30, 60, 90]), \"cosine\": cosine(0.1, 120)}, steps: 120, to: \"lr.svg\")", plot),
        Row(
            "hist(data, bins = 30, to = nil, title = \"\", x = \"\", range = nil)",
            doc: """
                A histogram of a list of numbers, or of several (a map of names to lists) drawn over one another \
                on the same bins; each bar is the share of its list's values, so lists of different sizes \
                compare. `range` [lo, hi] fixes the bins' span (values outside count at its ends).
                """,
            example: "hist({\"one-hot\": [4.1, 5.0, 6.2], \"smoothed\": [3.0, 3.4, 3.9]}, bins: 10, x: \"logit gap\")", hist),
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
            "show_batch(dataset, transform = nil, count = 16, to = \"batch.png\", seed = nil, range = nil)",
            doc: """
                Writes a PNG grid of images with their labels, shown under a notebook cell: every image on one range \
                (`range` [lo, hi], else 0-255 when every pixel is in it, else the grid's own least and largest \
                value), so that brightness and contrast changes show, enlarged to about 112 pixels.
                """,
            example: "show_batch(train, transform: augment, to: \"batch.png\")", showBatch),
        Row(
            "show_images(images, captions = nil, to = \"images.png\", columns = 8, range = nil)",
            doc: """
                Writes a PNG grid of a tensor of images [N, C, H, W] (a batch, mixup's mixed images, a map of \
                gradients), all on one range as in show_batch, with optional captions (\"\\n\" starts a new line; \
                a line longer than its picture is cut).
                """,
            example: "show_images(mixup(batch, 10, seed: 1).images, to: \"mixed.png\")", showImages),
        Row(
            "show_predictions(model, dataset, transform = nil, count = 16, to = \"predictions.png\", seed = nil)",
            doc: """
                A PNG grid of images captioned with the model's prediction; a wrong one is framed in red with the \
                truth under it in parentheses. Returns how many were right.
                """,
            example: "show_predictions(model, test, count: 8, to: \"predictions.png\")", showPredictions),
    ]

    static let types: [HostType] = [Progress.type, TableBox.type]

    static func plot(_ a: Args) throws -> Value {
        let steps = try a.isNil("steps") ? nil : try a.int("steps", in: 1...TrainingLibrary.maxValues)
        let fields = try a.isNil("fields") ? nil : try a.list("fields").map(\.str)
        var (s, axes) = try series(try a.value("data"), steps: steps, fields: fields, by: try a.string("by"))
        if let x = try a.stringOrNil("x") { axes.x = x }
        if let y = try a.stringOrNil("y") { axes.y = y }
        axes.logY = try a.bool("log")
        axes.logX = try a.bool("log_x")
        return try draw(Chart.svg(s, title: try a.string("title"), axes: axes), terminal: Chart.terminal(s, axes: axes), a)
    }

    static func hist(_ a: Args) throws -> Value {
        let bins = try a.int("bins", in: 1...1000)
        let s: [Series]
        switch try a.value("data") {
        case .list(let l): s = [Series("", try numbers(l.items, a, "data"))]
        case .map(let m):
            s = try zip(m.keys, m.values).map { k, v in
                guard case .list(let l) = v else { throw a.fail("data", "must map names to lists of numbers, '\(k.str)' is \(v.typeName)") }
                return Series(k.str, try numbers(l.items, a, "data"))
            }
        case let v: throw a.fail("data", "must be a list of numbers or a map of names to lists, got \(v.typeName)")
        }
        var range: ClosedRange<Double>?
        if !(try a.isNil("range")) {
            let r = try numbers(try a.list("range"), a, "range")
            guard r.count == 2, r[0].isFinite, r[1].isFinite, r[0] < r[1] else { throw a.fail("range", "must be [lo, hi], two finite numbers with lo < hi") }
            range = r[0]...r[1]
        }
        let title = try a.string("title"), x = try a.string("x")
        return try draw(Chart.histogramSVG(s, bins: bins, range: range, title: title, x: x), terminal: Chart.terminalHistogram(s, bins: bins, range: range, x: x), a)
    }

    /// The items as numbers, or an error naming the argument.
    static func numbers(_ items: [Value], _ a: Args, _ name: String) throws -> [Double] {
        try items.map { v in
            guard let d = v.number else { throw a.fail(name, "must hold numbers only, got \(v.typeName)") }
            return d
        }
    }

    /// Writes the chart to the `to` argument's path, and shows it under the cell (or its text form
    /// on a terminal).
    static func draw(_ svg: String, terminal: @autoclosure () -> String, _ a: Args) throws -> Value {
        if let path = try a.stringOrNil("to") {
            do { try writeAtomically(svg, to: path) } catch { throw ScriptError("\(a.callee.name)(): \(error)") }
        }
        if a.interpreter.showsRichOutput { a.interpreter.show(.svg(svg)) } else { a.interpreter.output(terminal()) }
        return .nil_
    }

    /// Series from a schedule, a list of numbers, a history (a list of records) or a map of names
    /// to any of these, with the axes' titles for that kind of data.
    static func series(_ v: Value, steps: Int?, fields: [String]?, by: String) throws -> ([Series], Axes) {
        guard case .map(let m) = v else { return try single(v, steps: steps, fields: fields, by: by) }
        var out: [Series] = []
        var axes = Axes()
        for (k, item) in zip(m.keys, m.values) {
            if case .map = item { throw ScriptError("plot(): argument 'data' maps '\(k.str)' to a map: give a schedule, a list of numbers or a history") }
            let (s, a) = try single(item, steps: steps, fields: fields, by: by)
            axes = a
            out += s.map { Series(s.count == 1 ? k.str : "\(k.str) \($0.name)", $0.values, xs: $0.xs) }
        }
        return (out, axes)
    }

    /// The series of one schedule, list or history.
    static func single(_ v: Value, steps: Int?, fields: [String]?, by: String) throws -> ([Series], Axes) {
        switch v {
        case .host(let s as ScheduleBox):
            let ys = try s.schedule.values(steps ?? s.steps ?? 100).map(Double.init)
            return ([Series("learning rate", ys)], Axes(x: "step", y: "learning rate"))
        case .list(let l):
            if l.items.allSatisfy({ $0.number != nil }) {
                return ([Series("value", l.items.compactMap(\.number))], Axes(x: "position", y: "value"))
            }
            // A history: every numeric field but the `by` field (the epoch), which is the x axis,
            // and the learning rate, which is on another scale (named in `fields` to draw it).
            var keys: [String] = []
            for case .map(let m) in l.items {
                for case .string(let k) in m.keys where !keys.contains(k) && k != by && (fields?.contains(k) ?? (k != "lr")) { keys.append(k) }
            }
            if let fields, let missing = fields.first(where: { !keys.contains($0) }) {
                throw ScriptError("plot(): the history has no number field '\(missing)'\(didYouMean(missing, keys))")
            }
            let records = l.items.compactMap { item -> MapRef? in if case .map(let m) = item { m } else { nil } }
            let xs = records.enumerated().map { n, m in (try? m.get(.string(by)))??.number ?? Double(n + 1) }
            let series = keys.compactMap { k -> Series? in
                var px: [Double] = [], py: [Double] = []
                for (n, m) in records.enumerated() { if let y = (try? m.get(.string(k)))??.number { px.append(xs[n]); py.append(y) } }
                return py.isEmpty ? nil : Series(k, py, xs: px)
            }
            let kinds = Set(keys.map { $0.contains("top") || $0.contains("acc") ? "accuracy" : $0.contains("loss") ? "loss" : $0 })
            return (series, Axes(x: by, y: kinds.count == 1 ? kinds.first ?? "" : kinds.sorted().joined(separator: " and ")))
        default:
            throw ScriptError("plot(): argument 'data' must be a schedule, a list of numbers, a history or a map of these, got \(v.typeName)")
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
        return try grid(zip(images, captions).map { GridItem($0, caption: $1) }, columns: 8, range: try range(a), a)
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
        return try grid(zip(images, captions).map { GridItem($0, caption: $1) }, columns: try a.int("columns", in: 1...1000), range: try range(a), a)
    }

    static func showPredictions(_ a: Args) throws -> Value {
        let d = try a.host("dataset", DatasetBox.self).dataset
        let p = try predictions(
            try a.host("model", ModelBox.self).model, d, transform: try DataLibrary.transformOrNil(a),
            count: try a.int("count"), seed: try a.seed())
        let items = p.map {
            $0.predicted == $0.label
                ? GridItem($0.image, caption: className(d, $0.predicted))
                : GridItem($0.image, caption: "\(className(d, $0.predicted))\n(\(className(d, $0.label)))", mark: .red)
        }
        _ = try grid(items, columns: 8, range: nil, a)
        return .int(p.filter { $0.predicted == $0.label }.count)
    }

    static func className(_ d: any Dataset, _ k: Int) -> String {
        d.classNames.indices.contains(k) ? d.classNames[k] : String(k)
    }

    /// The `range` argument: [lo, hi] the grid maps to black and white (nil: the grid's rule).
    static func range(_ a: Args) throws -> ClosedRange<Float>? {
        guard !(try a.isNil("range")) else { return nil }
        let r = try a.list("range").map { $0.number }
        guard r.count == 2, let lo = r[0].map(Float.init), let hi = r[1].map(Float.init), lo.isFinite, hi.isFinite, lo < hi else {
            throw a.fail("range", "must be [lo, hi], two finite numbers with lo < hi")
        }
        return lo...hi
    }

    /// Writes the grid to the `to` argument's path and shows it under the cell, or says where it
    /// is on a terminal (nil: the picture is what a cell shows).
    static func grid(_ items: [GridItem], columns: Int, range: ClosedRange<Float>?, _ a: Args) throws -> Value {
        let path = try a.string("to")
        let png = try gridPNG(items, columns: columns, range: range, name: path)
        do { try writeAtomically(Data(png), to: path) } catch { throw ScriptError("\(a.callee.name)(): \(error)") }
        if a.interpreter.showsRichOutput {
            a.interpreter.show(.png(png, alt: "\(items.count) images (\(path))"))
        } else {
            a.interpreter.output("\(items.count) image\(items.count == 1 ? "" : "s") in \(path)")
        }
        return .nil_
    }
}

/// What table() gives: its text, printed as it is on a terminal and drawn as a table under a
/// notebook cell, once, whether it is printed or is the cell's value.
final class TableBox: HostObject, TypedHost {
    override var hostType: HostType { TableBox.type }
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
final class Progress: HostObject, TypedHost {
    override var hostType: HostType { Progress.type }
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
