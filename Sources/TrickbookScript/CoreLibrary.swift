import Foundation

// The core library: one row per builtin (signature, doc, example, closure).

extension Interpreter {
    /// Signatures that failed to parse at registration: a bug in a binding, checked by the tests.
    public nonisolated(unsafe) static var registrationErrors: [String] = []

    /// Registers one builtin row; a malformed signature is recorded in `registrationErrors` (the tests check it is empty).
    /// The example is what `help(name)` shows; the tests run every one.
    public func row(_ signature: String, _ doc: String, _ example: String, fast: ((Value) -> Value?)? = nil, _ body: @escaping (Args) throws -> Value) {
        do { register(try Builtin(signature, doc: doc, example: example, fast: fast, body)) } catch { Interpreter.registrationErrors.append(signature) }
    }

    /// A row for a builtin of one value defined for every value: `f` is its fast path and its body.
    func total(_ signature: String, _ doc: String, _ example: String, _ f: @escaping (Value) -> Value) {
        row(signature, doc, example, fast: f) { a in f(a[0]) }
    }

    /// A row for a function of one real number: its fast path takes an int or a float, and its
    /// body says what else it was given.
    func real(_ signature: String, _ doc: String, _ example: String, _ f: @escaping (Double) -> Double) {
        row(signature, doc, example, fast: { v in v.number.map { .float(f($0)) } }) { a in .float(f(try a.number(0))) }
    }

    func method(_ type: String, _ signature: String, _ doc: String, _ example: String, _ body: @escaping (Args) throws -> Value) {
        do { registerMethod(type, try Builtin(signature, doc: doc, example: example, body)) } catch { Interpreter.registrationErrors.append(signature) }
    }

    func registerCoreLibrary() {
        row("print(*values)", "Prints the values separated by spaces (a table alone is drawn as one in a notebook).",
            "print(\"loss\", 0.25)") { a in
            let items = (try? a.list(0)) ?? []
            if items.count == 1, a.interpreter.showRich(items[0]) { return .nil_ }
            a.interpreter.output(items.map(\.str).joined(separator: " "))
            return .nil_
        }
        total("str(value)", "The value as text.", "str(3)  # \"3\"") { .string($0.str) }
        total("repr(value)", "The value as text, strings quoted.", "repr(\"hi\")  # with the quotes") { .string($0.repr) }
        total("type(value)", "The name of the value's type.", "type(1.5)  # \"float\"") { .string($0.typeName) }
        row("int(value)", "Converts to an int (floats truncate toward zero, strings are parsed).", "int(\"42\") + int(3.9)  # 45") { a in
            switch a[0] {
            case .int: return a[0]
            case .bool(let b): return .int(b ? 1 : 0)
            case .float(let d):
                guard d.isFinite, abs(d) < 9.2e18 else { throw a.fail(0, "cannot convert \(formatFloat(d)) to an int") }
                return .int(Int(d))
            case .string(let s):
                guard let n = Int(s.trimmingCharacters(in: .whitespaces)) else { throw ScriptError("int(): cannot convert \(quote(s))") }
                return .int(n)
            default: throw a.fail(0, "must be a number or string, got \(a[0].typeName)")
            }
        }
        row("float(value)", "Converts to a float.", "float(\"2.5\")") { a in
            switch a[0] {
            case .int(let n): return .float(Double(n))
            case .float: return a[0]
            case .bool(let b): return .float(b ? 1 : 0)
            case .string(let s):
                guard let d = Double(s.trimmingCharacters(in: .whitespaces)) else { throw ScriptError("float(): cannot convert \(quote(s))") }
                return .float(d)
            default: throw a.fail(0, "must be a number or string, got \(a[0].typeName)")
            }
        }
        row("bool(value)", "The value's truth: nil, false, 0, empty strings and collections are false.", "bool([])  # false") { a in .bool(try a[0].truth()) }
        let count: (Value) -> Value? = { v in  // (len's fast path, the first thing its body tries)
            switch v {
            case .list(let l): .int(l.items.count)
            case .string(let s): .int(s.count)
            case .map(let m): .int(m.count)
            default: nil
            }
        }
        row("len(value)", "The number of items of a list, string, map or range.", "len([1, 2, 3])", fast: count) { a in
            if let n = count(a[0]) { return n }
            switch a[0] {
            case .range(let lo, let hi, _): return .int(max(0, hi - lo))
            case .host(let o):
                guard let len = o.hostType.length else { throw a.fail(0, "has no length (\(o.hostType.name))") }
                return .int(try len(o))
            default: throw a.fail(0, "has no length (\(a[0].typeName))")
            }
        }
        row("range(start, stop = nil, step = 1)", "Integers from start (or 0) up to stop, by step.", "for i in range(3) { print(i) }") { a in
            var lo = 0, hi = try a.int(0)
            if !a.isNil(1) { lo = hi; hi = try a.int(1) }
            let step = try a.int(2)
            guard step != 0 else { throw a.fail(2, "must not be zero") }
            if step == 1 { return .range(lo, hi, inclusive: false) }
            let (span, o) = hi.subtractingReportingOverflow(lo)
            try checkSize(o ? Int.max : abs(span / step), "the range")
            return .list(ListRef(Array(stride(from: lo, to: hi, by: step)).map { .int($0) }))
        }
        row("abs(x)", "The absolute value.", "abs(-2.5)") { a in
            switch a[0] {
            case .int(let n): guard n != Int.min else { throw ScriptError("integer overflow") }; return .int(Swift.abs(n))
            default: return .float(Swift.abs(try a.number(0)))
            }
        }
        func extreme(_ a: Args, _ pick: (Value, Value) throws -> Bool) throws -> Value {
            var items = try a.list(0)
            if items.count == 1, case .list(let l) = items[0] { items = l.items }
            guard var best = items.first else { throw ScriptError("\(a.callee.name)() of nothing") }
            for v in items.dropFirst() where try pick(v, best) { best = v }
            return best
        }
        row("min(*values)", "The smallest of the arguments, or of one list.", "min(3, 1, 2)") { a in try extreme(a) { try binary(.lt, $0, $1).truth() } }
        row("max(*values)", "The largest of the arguments, or of one list.", "max([0.91, 0.93, 0.92])") { a in try extreme(a) { try binary(.gt, $0, $1).truth() } }
        row("sum(values, start = 0)", "The sum of a list.", "sum([0.5, 0.25], start: 1)  # 1.75") { a in try a.list(0).reduce(a[1]) { try binary(.add, $0, $1) } }
        row("round(x, digits = nil)", "Rounds half to even: to an int, or to a float with that many digits.", "round(0.91234, digits: 2)  # 0.91") { a in
            let x = try a.number(0)
            if a.isNil(1) {
                let r = x.rounded(.toNearestOrEven)
                guard r.isFinite, Swift.abs(r) < 9.2e18 else { throw a.fail(0, "cannot round \(formatFloat(x)) to an int") }
                return .int(Int(r))
            }
            // Beyond ±308 digits the scale is 0 or inf: the number is its own rounding.
            let digits = try a.int(1)
            guard abs(digits) <= 308 else { return .float(digits > 0 ? x : 0) }
            let p = Foundation.pow(10.0, Double(digits))
            let r = (x * p).rounded(.toNearestOrEven) / p
            return .float(r.isFinite ? r : x)
        }
        row("floor(x)", "The largest int not above x.", "floor(7 / 2)  # 3") { a in
            let r = (try a.number(0)).rounded(.down)
            guard r.isFinite, Swift.abs(r) < 9.2e18 else { throw a.fail(0, "cannot be an int: \(formatFloat(r)) is beyond ±9.2e18") }
            return .int(Int(r))
        }
        row("ceil(x)", "The smallest int not below x.", "ceil(60000 / 128)  # batches in an epoch: 469") { a in
            let r = (try a.number(0)).rounded(.up)
            guard r.isFinite, Swift.abs(r) < 9.2e18 else { throw a.fail(0, "cannot be an int: \(formatFloat(r)) is beyond ±9.2e18") }
            return .int(Int(r))
        }
        real("sqrt(x)", "The square root.", "sqrt(2)") { $0.squareRoot() }
        real("exp(x)", "e to the power x.", "exp(1)", Foundation.exp)
        real("log(x)", "The natural logarithm.", "log(10)", Foundation.log)
        real("cos(x)", "The cosine (x in radians).", "cos(pi)", Foundation.cos)
        real("sin(x)", "The sine (x in radians).", "sin(pi / 2)", Foundation.sin)
        define("pi", .float(Double.pi))
        predefined.insert("pi")
        row("sorted(values)", "A sorted copy of a list (numbers or strings).", "sorted([3, 1, 2])") { a in
            var items = try a.list(0)
            var failure: Error?
            items.sort { x, y in
                do { return try binary(.lt, x, y).truth() } catch { failure = failure ?? error; return false }
            }
            if let failure { throw failure }
            return .list(ListRef(items))
        }
        row("reversed(values)", "A reversed copy of a list.", "reversed([1, 2, 3])") { a in .list(ListRef(try a.list(0).reversed())) }
        row("enumerate(values)", "Pairs [index, item] of a list.", "for i, x in enumerate([\"a\", \"b\"]) { print(i, x) }") { a in
            .list(ListRef(try a.list(0).enumerated().map { .list(ListRef([.int($0.offset), $0.element])) }))
        }
        row("zip(a, b)", "Pairs [a[i], b[i]] up to the shorter list.", "zip([\"a\", \"b\"], [1, 2])") { a in
            .list(ListRef(zip(try a.list(0), try a.list(1)).map { .list(ListRef([$0, $1])) }))
        }
        row("keys(map)", "The keys of a map, in insertion order.", "keys({\"lr\": 0.1, \"wd\": 1e-4})") { a in
            guard case .map(let m) = a[0] else { throw a.fail(0, "must be a map, got \(a[0].typeName)") }
            return .list(ListRef(m.keys))
        }
        row("values(map)", "The values of a map, in insertion order.", "values({\"lr\": 0.1, \"wd\": 1e-4})") { a in
            guard case .map(let m) = a[0] else { throw a.fail(0, "must be a map, got \(a[0].typeName)") }
            return .list(ListRef(m.values))
        }
        row("next(iterator)", "The next item of an object stepped by hand (a loader: its next batch, starting a new epoch after the last).",
            "let b = next(batches)") { a in
            guard case .host(let o) = a[0], let next = o.hostType.next else { throw a.fail(0, "cannot be stepped with next(), got \(a[0].typeName)") }
            return try next(o)
        }
        row("gc()", "Frees reference cycles now (lists inside themselves, closures in the frames they close over); the count of objects cleared. It also runs by itself between cells.",
            "gc()") { a in .int(a.interpreter.collectCycles()) }
        row("clock()", "Seconds since an arbitrary start, for timing.", "let start = clock(); print(\"took {clock() - start:.3f} s\")") { _ in
            .float(Double(DispatchTime.now().uptimeNanoseconds) / 1e9)
        }
        row("param(name, default = nil)", "A notebook's parameter: the value given by `trickbook run FILE --set name=value`, else default (papermill's parameters).",
            "let epochs = param(\"epochs\", 70)") { a in
            let name = try a.string(0)
            a.interpreter.parametersRead.insert(name)
            return a.interpreter.parameters[name] ?? a[1]
        }
        row("help(name)", "Prints what a builtin, function or object is and how to call it.", "help(range)") { a in
            a.interpreter.output(a.interpreter.help(for: a[0]))
            return .nil_
        }
        registerMethods()
    }

    private func registerMethods() {
        func list(_ a: Args) -> ListRef { if case .list(let l)? = a.receiver { return l }; return ListRef([]) }
        func map(_ a: Args) -> MapRef { if case .map(let m)? = a.receiver { return m }; return MapRef() }
        func string(_ a: Args) -> String { if case .string(let s)? = a.receiver { return s }; return "" }

        method("list", "append(item)", "Adds an item at the end.", "xs.append(4)") { a in
            try checkSize(list(a).items.count + 1, "the list")
            list(a).items.append(a[0])
            list(a).stored(a[0])
            return .nil_
        }
        method("list", "pop(index = -1)", "Removes and returns an item (the last by default).", "xs.pop()") { a in
            let l = list(a)
            let i = try sequenceIndex(a[0], count: l.items.count, what: "list")
            return l.items.remove(at: i)
        }
        method("list", "insert(index, item)", "Inserts an item before index.", "xs.insert(0, 9)") { a in
            let l = list(a)
            var i = try a.int(0)
            if i < 0 { i += l.items.count }
            l.items.insert(a[1], at: min(max(i, 0), l.items.count))
            l.stored(a[1])
            return .nil_
        }
        method("list", "copy()", "A shallow copy: a new list with the same items.", "let ys = xs.copy(); ys.append(5)  # xs is unchanged") { a in .list(ListRef(list(a).items)) }
        method("list", "extend(items)", "Appends every item of a list.", "xs.extend([4, 5])") { a in
            let more = try a.list(0)
            try checkSize(list(a).items.count + more.count, "the extended list")
            list(a).items += more
            if let v = more.first(where: \.canLeadBack) { list(a).stored(v) }
            return .nil_
        }
        method("list", "index(item)", "The position of the first equal item.", "xs.index(2)") { a in
            guard let i = list(a).items.firstIndex(where: { valuesEqual($0, a[0]) }) else { throw ScriptError("\(a[0].repr) is not in the list") }
            return .int(i)
        }
        method("list", "contains(item)", "Whether an equal item is in the list.", "xs.contains(2)") { a in .bool(list(a).items.contains { valuesEqual($0, a[0]) }) }
        method("list", "sort()", "Sorts the list in place.", "xs.sort()") { a in
            let l = list(a)
            var failure: Error?
            l.items.sort { x, y in
                do { return try binary(.lt, x, y).truth() } catch { failure = failure ?? error; return false }
            }
            if let failure { throw failure }
            return .nil_
        }
        method("list", "join(separator)", "The items' text joined by separator.", "[1, 2, 3].join(\", \")") { a in
            try joined(list(a).items, try a.string(0))
        }

        method("map", "copy()", "A shallow copy: a new map with the same keys and values.", "let c = m.copy(); c[\"lr\"] = 0.2  # m is unchanged") { a in .map(map(a).copy()) }
        method("map", "get(key, default = nil)", "The value for key, or default.", "m.get(\"momentum\", 0.9)") { a in try map(a).get(a[0]) ?? a[1] }
        method("map", "has(key)", "Whether the map has key.", "m.has(\"lr\")") { a in .bool(try map(a).get(a[0]) != nil) }
        method("map", "keys()", "The keys, in insertion order.", "m.keys()") { a in .list(ListRef(map(a).keys)) }
        method("map", "values()", "The values, in insertion order.", "m.values()") { a in .list(ListRef(map(a).values)) }
        method("map", "items()", "Pairs [key, value].", "for kv in m.items() { print(kv[0], kv[1]) }") { a in
            let m = map(a)
            return .list(ListRef(zip(m.keys, m.values).map { .list(ListRef([$0, $1])) }))
        }
        method("map", "remove(key)", "Removes key and returns its value.", "m.remove(\"wd\")") { a in
            guard let v = try map(a).remove(a[0]) else { throw ScriptError("key \(a[0].repr) not in map") }
            return v
        }

        method("string", "upper()", "Upper case.", "\"resnet\".upper()") { a in .string(string(a).uppercased()) }
        method("string", "lower()", "Lower case.", "\"ResNet-D\".lower()") { a in .string(string(a).lowercased()) }
        method("string", "strip()", "Without leading and trailing white space.", "\"  top-1  \".strip()") { a in .string(string(a).trimmingCharacters(in: .whitespacesAndNewlines)) }
        method("string", "split(separator = nil)", "Parts split at separator (or at runs of white space).", "\"a,b,c\".split(\",\")") { a in
            let s = string(a)
            var parts: [Value] = []
            if a.isNil(0) {
                for part in s.lazy.split(whereSeparator: { $0.isWhitespace }) {
                    parts.append(.string(String(part)))
                    if parts.count & 0x3FFF == 0 { try stopIfInterrupted(a) }
                }
                return .list(ListRef(parts))
            }
            let sep = try a.string(0)
            guard !sep.isEmpty else { throw a.fail(0, "must not be empty") }
            var start = s.startIndex
            while let r = s.range(of: sep, range: start..<s.endIndex) {
                parts.append(.string(String(s[start..<r.lowerBound])))
                start = r.upperBound
                if parts.count & 0x3FFF == 0 { try stopIfInterrupted(a) }
            }
            parts.append(.string(String(s[start...])))
            return .list(ListRef(parts))
        }
        method("string", "replace(old, new)", "Every old replaced by new.", "\"resnet-b\".replace(\"b\", \"d\")") { a in
            let old = try a.string(0)
            guard !old.isEmpty else { throw a.fail(0, "must not be empty") }
            let s = string(a), new = try a.string(1)
            // At most s/old replacements, each growing the text by new − old.
            let growth = max(0, new.utf8.count - old.utf8.count) * (s.utf8.count / old.utf8.count)
            try checkSize(s.utf8.count + growth, "the replaced string")
            var out = "", start = s.startIndex, k = 0
            while let r = s.range(of: old, range: start..<s.endIndex) {
                out += s[start..<r.lowerBound]
                out += new
                start = r.upperBound
                k += 1
                if k & 0x3FFF == 0 { try stopIfInterrupted(a) }
            }
            out += s[start...]
            return .string(out)
        }
        method("string", "starts_with(prefix)", "Whether the string starts with prefix.", "\"epoch 3\".starts_with(\"epoch\")") { a in .bool(string(a).hasPrefix(try a.string(0))) }
        method("string", "ends_with(suffix)", "Whether the string ends with suffix.", "\"lr.svg\".ends_with(\".svg\")") { a in .bool(string(a).hasSuffix(try a.string(0))) }
        method("string", "find(text)", "The position of text, or -1.", "\"bag of tricks\".find(\"tricks\")  # 7") { a in
            let s = string(a), t = try a.string(0)
            guard let r = s.range(of: t) else { return .int(-1) }
            return .int(s.distance(from: s.startIndex, to: r.lowerBound))
        }
        method("string", "join(items)", "The items' text joined by this string.", "\", \".join([\"a\", \"b\"])") { a in
            try joined(try a.list(0), string(a))
        }
    }
}

/// Long loops over strings and lists stop here when the user pressed Ctrl-C (the caller's node
/// turns the error into an interrupt).
private func stopIfInterrupted(_ a: Args) throws {
    if a.interpreter.interrupt.isSet { throw ScriptError("interrupted") }
}

/// The items' text joined by a separator, after checking the total size.
private func joined(_ items: [Value], _ separator: String) throws -> Value {
    // The size (checked) first, then each part's bytes copied once into a string made at that
    // size (a part that is not a string is made into one again: those are few).
    var total = 0
    let sepCount = separator.utf8.count
    for k in items.indices {
        if case .string(let s) = items[k] { total += s.utf8.count } else { total += items[k].str.utf8.count }
        if k > 0 { total += sepCount }
        try checkSize(total, "the joined string")
    }
    var sep = separator
    return .string(String(unsafeUninitializedCapacity: total) { buffer in
        guard let dst = buffer.baseAddress else { return 0 }
        var at = 0
        // (withUTF8 reads a string's bytes where they are, a short one's from its inline form)
        func copy(_ s: inout String) {
            s.withUTF8 { src in
                guard let base = src.baseAddress else { return }
                let n = min(src.count, total - at)
                (dst + at).update(from: base, count: n)
                at += n
            }
        }
        for k in items.indices {
            if k > 0, !sep.isEmpty { copy(&sep) }
            if case .string(var s) = items[k] { copy(&s) } else { var s = items[k].str; copy(&s) }
        }
        return at
    })
}
