/// Parses tokens and resolves names in one pass, producing the executable tree.
/// Each parse function starts with its grammar rule.

private struct Local {
    let slot: Int
    let isConst: Bool
}

/// The names of one function (or of the top-level chunk) being compiled.
private final class FnScope {
    let parent: FnScope?
    let isChunk: Bool
    var blocks: [[String: Local]] = [[:]]
    var slotCount = 0
    var loopDepth = 0
    /// Whether a function is made inside this one (which may then keep its frame alive).
    var makesClosures = false
    /// The locals of functions around this one that it reads or writes, by name: how many
    /// functions out, and the slot there.
    var captures: [String: (depth: Int, slot: Int)] = [:]

    init(parent: FnScope?, isChunk: Bool) {
        self.parent = parent
        self.isChunk = isChunk
    }

    /// Top-level declarations of a chunk are globals.
    var atGlobalLevel: Bool { isChunk && blocks.count == 1 }

    func declare(_ name: String, isConst: Bool) -> Int {
        let slot = slotCount
        slotCount += 1
        blocks[blocks.count - 1][name] = Local(slot: slot, isConst: isConst)
        return slot
    }
}

struct Compiler {
    private let ctx: Interpreter
    private let file: SourceFile
    private var tokens: [Token]
    private var i = 0
    private var scope: FnScope
    /// Name, target and constness of variable-reading nodes, for assignments.
    private var names: [ObjectIdentifier: (String, Target, Bool)] = [:]
    /// Globals this chunk declares: committed to the interpreter only if it compiles.
    private(set) var declaredGlobals: [(Int, Bool)] = []
    /// How deep the tree being built is: each nested expression, block and function counts one,
    /// and so does each link of a chain (a + b + …, a or b or …, f()()…, m.a.b…). Parsing,
    /// running and freeing a tree all recurse on its depth, so past `maxNesting` the script gets
    /// an error instead of a stack overflow.
    private var nesting = 0
    /// Functions compiled so far (to tell whether a function's defaults make any).
    private var functionsMade = 0
    static let maxNesting = 1000

    /// One level deeper; undo with `nesting -= 1` (or by restoring a saved count).
    private mutating func deeper(_ what: String) throws {
        nesting += 1
        guard nesting <= Compiler.maxNesting else {
            throw error("\(what) nested too deeply (more than \(Compiler.maxNesting) levels): split it into smaller pieces")
        }
    }

    init(ctx: Interpreter, file: SourceFile) throws {
        self.ctx = ctx
        self.file = file
        var lexer = Lexer(file: file)
        tokens = try lexer.tokenize()
        scope = FnScope(parent: nil, isChunk: true)
    }

    /// program := stmt* EOF
    mutating func compileChunk() throws -> (body: [Stmt], slots: Int) {
        var body: [Stmt] = []
        skipSeparators()
        while !peek.isEOF {
            body.append(try statement())
            try endOfStatement()
            skipSeparators()
        }
        return (body, scope.slotCount)
    }

    // MARK: Tokens

    private var peek: Token { tokens[i] }
    private func peekAhead(_ k: Int) -> Token { tokens[min(i + k, tokens.count - 1)] }

    @discardableResult
    private mutating func advance() -> Token {
        let t = tokens[i]
        if i < tokens.count - 1 { i += 1 }
        return t
    }

    private func error(_ message: String, at pos: SourcePos? = nil, incomplete: Bool = false) -> ScriptError {
        var e = ScriptError(message, file: file, pos: pos ?? peek.pos)
        e.isSyntax = true
        e.incomplete = incomplete
        return e
    }

    /// An error about the current token: "incomplete" when the input simply ended.
    private func unexpected(_ expected: String) -> ScriptError {
        if peek.isEOF { return error("expected \(expected) but the input ended", incomplete: true) }
        return error("expected \(expected), found \(describe(peek))")
    }

    private func describe(_ t: Token) -> String {
        switch t.tok {
        case .ident(let s): return "'\(s)'"
        case .keyword(let s): return "'\(s)'"
        case .int(let n): return "'\(n)'"
        case .float(let d): return "'\(d)'"
        case .string: return "a string"
        case .op(let o): return "'\(o)'"
        case .newline: return "end of line"
        case .eof: return "end of input"
        }
    }

    private func isOp(_ o: String) -> Bool { peek.opText == o }
    private func isKeyword(_ k: String) -> Bool { peek.keywordText == k }

    private mutating func match(_ o: String) -> Bool {
        if isOp(o) { advance(); return true }
        return false
    }

    private mutating func expect(_ o: String) throws -> Token {
        guard isOp(o) else { throw unexpected("'\(o)'") }
        return advance()
    }

    private mutating func expectIdent(_ what: String) throws -> (String, SourcePos) {
        guard case .ident(let s) = peek.tok else { throw unexpected(what) }
        let p = advance().pos
        return (s, p)
    }

    private mutating func skipNewlines() { while peek.isNewline { advance() } }
    private mutating func skipSeparators() { while peek.isNewline || isOp(";") { advance() } }

    private mutating func endOfStatement() throws {
        if peek.isNewline || isOp(";") || peek.isEOF || isOp("}") { return }
        throw error("expected the end of the statement, found \(describe(peek))")
    }

    // MARK: Scopes

    private mutating func pushBlock() { scope.blocks.append([:]) }
    private mutating func popBlock() { scope.blocks.removeLast() }

    /// Declares a name in the current block and returns where it lives.
    private mutating func declare(_ name: String, isConst: Bool, at pos: SourcePos) throws -> Target {
        if scope.atGlobalLevel {
            let index = ctx.globalIndex(name)
            declaredGlobals.append((index, isConst))
            return .global(index)
        }
        if scope.blocks[scope.blocks.count - 1][name] != nil {
            throw error("'\(name)' is already declared in this scope", at: pos)
        }
        return .local(scope.declare(name, isConst: isConst))
    }

    /// Resolves a name: a local of this function, a local of an enclosing one, or a global.
    private mutating func resolve(_ name: String) -> (Target, Bool) {
        var s: FnScope? = scope
        var depth = 0
        while let fs = s {
            for block in fs.blocks.reversed() {
                if let l = block[name] {
                    var inner: FnScope? = scope
                    for k in 0..<depth { inner?.captures[name] = (depth - k, l.slot); inner = inner?.parent }
                    return (depth == 0 ? .local(l.slot) : .upvalue(depth, l.slot), l.isConst)
                }
            }
            s = fs.parent
            depth += 1
        }
        let index = ctx.globalIndex(name)
        let pendingConst = declaredGlobals.last { $0.0 == index }?.1
        return (.global(index), pendingConst ?? ctx.globalConst[index])
    }

    private func node<T>(_ make: (Interpreter, SourceFile) -> T) -> T { make(ctx, file) }

    // MARK: Statements

    /// stmt := decl | fn | if | while | for | break | continue | return | import | assert | throw | try | simple
    private mutating func statement() throws -> Stmt {
        let pos = peek.pos
        switch peek.keywordText ?? "" {
        case "let", "var": return try declaration()
        case "fn" where { if case .ident = peekAhead(1).tok { return true }; return false }():
            return try functionDeclaration()
        case "if": return try ifStatement()
        case "while":
            advance()
            let cond = try expression()
            scope.loopDepth += 1
            defer { scope.loopDepth -= 1 }
            return WhileStmt(ctx, file, pos, cond, try block())
        case "for": return try forStatement()
        case "break", "continue":
            let word = advance().keywordText ?? ""
            guard scope.loopDepth > 0 else { throw error("'\(word)' outside a loop", at: pos) }
            return word == "break" ? BreakStmt(ctx, file, pos) : ContinueStmt(ctx, file, pos)
        case "return":
            advance()
            guard !scope.isChunk else { throw error("'return' outside a function", at: pos) }
            if peek.isNewline || isOp(";") || isOp("}") || peek.isEOF { return ReturnStmt(ctx, file, pos, nil) }
            return ReturnStmt(ctx, file, pos, try expression())
        case "import":
            advance()
            guard case .string(let parts) = peek.tok, parts.count == 1, case .text(let name) = parts[0] else {
                throw unexpected("a module name in quotes")
            }
            advance()
            return ImportStmt(ctx, file, pos, name)
        case "assert":
            advance()
            let cond = try expression()
            var message: Expr?
            if match(",") { skipNewlines(); message = try expression() }
            return AssertStmt(ctx, file, pos, cond, message)
        case "throw":
            advance()
            return ThrowStmt(ctx, file, pos, try expression())
        case "try": return try tryStatement()
        default: return try simpleStatement()
        }
    }

    /// decl := ('let' | 'var') IDENT '=' expr
    private mutating func declaration() throws -> Stmt {
        let isConst = advance().keywordText == "let"
        let (name, pos) = try expectIdent("a name after '\(isConst ? "let" : "var")'")
        _ = try expect("=")
        skipNewlines()
        let value = try expression()  // before declaring: `let x = x + 1` reads the outer x
        let target = try declare(name, isConst: isConst, at: pos)
        return AssignStmt(ctx, file, pos, target, value, declares: true)
    }

    /// fn := 'fn' IDENT '(' params ')' body
    private mutating func functionDeclaration() throws -> Stmt {
        advance()
        let (name, pos) = try expectIdent("a function name")
        let target = try declare(name, isConst: true, at: pos)  // declared first, so the body can recurse
        let proto = try functionRest(name: name, pos: pos)
        return AssignStmt(ctx, file, pos, target, FunctionExpr(ctx, file, pos, proto), declares: true)
    }

    /// params := '(' (IDENT ('=' expr)?) % ',' ')' ; body := block | '=>' expr
    private mutating func functionRest(name: String, pos: SourcePos) throws -> FunctionProto {
        try deeper("functions")
        defer { nesting -= 1 }
        functionsMade += 1
        let textStart = peekAhead(0).pos
        _ = try expect("(")
        var params: [(String, SourcePos)] = []
        var defaultTokens: [(Int, Int)?] = []  // token ranges of default expressions, compiled in the new scope
        while !isOp(")") {
            let (p, ppos) = try expectIdent("a parameter name")
            if params.contains(where: { $0.0 == p }) { throw error("parameter '\(p)' appears twice", at: ppos) }
            params.append((p, ppos))
            if match("=") {
                let start = i
                _ = try withScratchScope { try $0.expression() }
                defaultTokens.append((start, i))
            } else {
                if defaultTokens.contains(where: { $0 != nil }) { throw error("parameter '\(p)' without a default follows one with a default", at: ppos) }
                defaultTokens.append(nil)
            }
            if !match(",") { break }
        }
        _ = try expect(")")
        let proto = FunctionProto(name: name, params: params.map(\.0), defaults: [], file: file, pos: pos)
        let saved = scope
        saved.makesClosures = true
        scope = FnScope(parent: saved, isChunk: false)
        defer { scope = saved }
        for (p, _) in params { _ = scope.declare(p, isConst: false) }
        let resume = i, madeBefore = functionsMade
        proto.defaults = try defaultTokens.map { range -> Expr? in
            guard let (start, _) = range else { return nil }
            i = start
            return try expression()
        }
        proto.defaultsMakeFunctions = functionsMade != madeBefore
        i = resume
        if match("=>") {
            skipNewlines()
            let e = try expression()
            proto.body = [ReturnStmt(ctx, file, e.pos, e)]
        } else {
            proto.body = ContiguousArray(try blockBody())
        }
        proto.slotCount = scope.slotCount
        proto.makesClosures = scope.makesClosures
        proto.captures = scope.captures.map { ($0.key, $0.value.depth, $0.value.slot) }
        proto.text = (textStart, peekAhead(0).pos)
        return proto
    }

    /// Parses with a throwaway scope (to skip over default expressions before their real compile).
    private mutating func withScratchScope<T>(_ body: (inout Compiler) throws -> T) throws -> T {
        let saved = scope, savedNames = names
        scope = FnScope(parent: saved, isChunk: false)
        defer { scope = saved; names = savedNames }
        return try body(&self)
    }

    /// block := '{' stmt* '}'
    private mutating func block() throws -> Stmt {
        let pos = peek.pos
        try deeper("blocks")
        defer { nesting -= 1 }
        pushBlock()
        defer { popBlock() }
        return BlockStmt(ctx, file, pos, try blockBody())
    }

    private mutating func blockBody() throws -> [Stmt] {
        guard isOp("{") else { throw unexpected("'{'") }
        advance()
        var body: [Stmt] = []
        skipSeparators()
        while !isOp("}") {
            if peek.isEOF { throw error("expected '}' but the input ended", incomplete: true) }
            body.append(try statement())
            try endOfStatement()
            skipSeparators()
        }
        advance()
        return body
    }

    /// if := 'if' expr block ('else' (if | block))?
    private mutating func ifStatement() throws -> Stmt {
        let pos = advance().pos
        let cond = try expression()
        let then = try block()
        // `else` may start the next line.
        var k = 0
        while peekAhead(k).isNewline { k += 1 }
        guard peekAhead(k).keywordText == "else" else { return IfStmt(ctx, file, pos, cond, then, nil) }
        skipNewlines()
        advance()
        if isKeyword("if") {
            // Each `else if` nests the next `if` inside this one.
            try deeper("else-if chain")
            defer { nesting -= 1 }
            return IfStmt(ctx, file, pos, cond, then, try ifStatement())
        }
        return IfStmt(ctx, file, pos, cond, then, try block())
    }

    /// for := 'for' IDENT (',' IDENT)? 'in' expr block
    private mutating func forStatement() throws -> Stmt {
        let pos = advance().pos
        let (a, apos) = try expectIdent("a loop variable")
        var b: (String, SourcePos)?
        if match(",") { b = try expectIdent("a second loop variable") }
        guard isKeyword("in") else { throw unexpected("'in'") }
        advance()
        let iterable = try expression()
        pushBlock()
        defer { popBlock() }
        let ta = Target.local(scope.declare(a, isConst: false))
        var tb: Target?
        if let (bn, bpos) = b {
            if bn == a { throw error("loop variable '\(bn)' appears twice", at: bpos) }
            tb = .local(scope.declare(bn, isConst: false))
        }
        _ = apos
        scope.loopDepth += 1
        defer { scope.loopDepth -= 1 }
        return ForStmt(ctx, file, pos, ta, tb, iterable, try block())
    }

    /// try := 'try' block 'catch' IDENT? block
    private mutating func tryStatement() throws -> Stmt {
        let pos = advance().pos
        let body = try block()
        skipNewlines()
        guard isKeyword("catch") else { throw unexpected("'catch'") }
        advance()
        pushBlock()
        defer { popBlock() }
        var target: Target?
        if case .ident(let name) = peek.tok {
            advance()
            target = .local(scope.declare(name, isConst: false))
        }
        return TryStmt(ctx, file, pos, body, target, try block())
    }

    private static let compound: [String: BinOp] = ["+=": .add, "-=": .sub, "*=": .mul, "/=": .div, "%=": .mod, "**=": .pow, "//=": .floorDiv]

    /// simple := expr (('=' | '+=' | …) expr)?
    private mutating func simpleStatement() throws -> Stmt {
        let lhs = try expression()
        guard let o = peek.opText, o == "=" || Compiler.compound[o] != nil else { return ExprStmt(lhs) }
        let opPos = advance().pos
        skipNewlines()
        let value = try expression()
        let op = Compiler.compound[o]
        if let (name, target, isConst) = names[ObjectIdentifier(lhs)] {
            if isConst { throw error("cannot assign to constant '\(name)'", at: lhs.pos) }
            if let op { return CompoundAssignStmt(ctx, file, lhs.pos, target, op, value) }
            return AssignStmt(ctx, file, lhs.pos, target, value, declares: false)
        }
        if let ix = lhs as? IndexExpr { return IndexAssignStmt(ctx, file, ix.pos, ix.object, ix.index, op, value) }
        if let sl = lhs as? SliceExpr { return SubscriptAssignStmt(ctx, file, sl.pos, sl.object, [.slice(sl.start, sl.end, sl.step)], op, value) }
        if let mx = lhs as? MultiIndexExpr { return SubscriptAssignStmt(ctx, file, mx.pos, mx.object, mx.items, op, value) }
        if let m = lhs as? MemberExpr { return MemberAssignStmt(ctx, file, m.pos, m.object, m.name, op, value) }
        throw error("cannot assign to this expression", at: opPos)
    }

    // MARK: Expressions

    /// expr := or ('?' expr ':' expr)?
    mutating func expression() throws -> Expr {
        try deeper("expression")
        defer { nesting -= 1 }
        let cond = try orExpr()
        guard isOp("?") else { return cond }
        let pos = advance().pos
        skipNewlines()
        let a = try expression()
        skipNewlines()
        _ = try expect(":")
        skipNewlines()
        return TernaryExpr(ctx, file, pos, cond, a, try expression())
    }

    /// or := and ('or' and)*
    private mutating func orExpr() throws -> Expr {
        let saved = nesting
        defer { nesting = saved }
        var e = try andExpr()
        while isKeyword("or") {
            try deeper("expression")
            let pos = advance().pos
            skipNewlines()
            e = OrExpr(ctx, file, pos, e, try andExpr())
        }
        return e
    }

    /// and := not ('and' not)*
    private mutating func andExpr() throws -> Expr {
        let saved = nesting
        defer { nesting = saved }
        var e = try notExpr()
        while isKeyword("and") {
            try deeper("expression")
            let pos = advance().pos
            skipNewlines()
            e = AndExpr(ctx, file, pos, e, try notExpr())
        }
        return e
    }

    /// not := 'not' not | comparison
    private mutating func notExpr() throws -> Expr {
        if isKeyword("not") {
            try deeper("expression")
            defer { nesting -= 1 }
            let pos = advance().pos
            return NotExpr(ctx, file, pos, try notExpr())
        }
        return try comparison()
    }

    private static let comparisons: [String: BinOp] = ["==": .eq, "!=": .ne, "<": .lt, "<=": .le, ">": .gt, ">=": .ge]

    /// comparison := range (('==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not' 'in') range)?
    private mutating func comparison() throws -> Expr {
        let lhs = try rangeExpr()
        guard let (op, pos) = comparisonOp() else { return lhs }
        skipNewlines()
        let e = BinaryExpr(ctx, file, pos, op, lhs, try rangeExpr())
        if comparisonOpAhead() { throw error("comparisons cannot be chained: write 'a < b and b < c'") }
        return e
    }

    private func comparisonOpAhead() -> Bool {
        if let o = peek.opText, Compiler.comparisons[o] != nil { return true }
        return isKeyword("in") || (isKeyword("not") && peekAhead(1).keywordText == "in")
    }

    private mutating func comparisonOp() -> (BinOp, SourcePos)? {
        if let o = peek.opText, let op = Compiler.comparisons[o] { return (op, advance().pos) }
        if isKeyword("in") { return (.inOp, advance().pos) }
        if isKeyword("not") && peekAhead(1).keywordText == "in" {
            let pos = advance().pos
            advance()
            return (.notIn, pos)
        }
        return nil
    }

    /// range := additive (('..<' | '...') additive)?
    private mutating func rangeExpr() throws -> Expr {
        let lo = try additive()
        guard isOp("..<") || isOp("...") else { return lo }
        let t = advance()
        skipNewlines()
        return RangeExpr(ctx, file, t.pos, lo, try additive(), inclusive: t.opText == "...")
    }

    /// additive := multiplicative (('+' | '-') multiplicative)*
    private mutating func additive() throws -> Expr {
        let saved = nesting
        defer { nesting = saved }
        var e = try multiplicative()
        while isOp("+") || isOp("-") {
            try deeper("expression")
            let t = advance()
            skipNewlines()
            e = BinaryExpr(ctx, file, t.pos, t.opText == "+" ? .add : .sub, e, try multiplicative())
        }
        return e
    }

    private static let multiplicativeOps: [String: BinOp] = ["*": .mul, "/": .div, "//": .floorDiv, "%": .mod, "@": .matmul]

    /// multiplicative := unary (('*' | '/' | '//' | '%' | '@') unary)*
    private mutating func multiplicative() throws -> Expr {
        let saved = nesting
        defer { nesting = saved }
        var e = try unary()
        while let o = peek.opText, let op = Compiler.multiplicativeOps[o] {
            try deeper("expression")
            let pos = advance().pos
            skipNewlines()
            e = BinaryExpr(ctx, file, pos, op, e, try unary())
        }
        return e
    }

    /// unary := ('-' | '+') unary | power
    private mutating func unary() throws -> Expr {
        guard isOp("-") || isOp("+") else { return try power() }
        try deeper("expression")
        defer { nesting -= 1 }
        if isOp("-") {
            let pos = advance().pos
            return NegExpr(ctx, file, pos, try unary())
        }
        if isOp("+") {
            advance()
            return try unary()
        }
        return try power()
    }

    /// power := postfix ('**' unary)?
    private mutating func power() throws -> Expr {
        let base = try postfix()
        guard isOp("**") else { return base }
        try deeper("expression")
        defer { nesting -= 1 }
        let pos = advance().pos
        skipNewlines()
        return BinaryExpr(ctx, file, pos, .pow, base, try unary())
    }

    /// postfix := primary ( '(' args ')' | '[' index ']' | '.' IDENT )*
    private mutating func postfix() throws -> Expr {
        let saved = nesting
        defer { nesting = saved }
        var e = try primary()
        while true {
            if isOp("(") || isOp("[") || isOp(".") { try deeper("expression") }
            if isOp("(") {
                let pos = advance().pos
                let (args, argNames) = try arguments()
                e = CallExpr(ctx, file, e.pos.line == pos.line ? e.pos : pos, e, args, argNames)
            } else if isOp("[") {
                let pos = advance().pos
                e = try indexOrSlice(e, pos)
            } else if isOp(".") {
                advance()
                let (name, npos) = try expectIdent("a member name after '.'")
                if isOp("(") {
                    advance()
                    let (args, argNames) = try arguments()
                    e = MethodCallExpr(ctx, file, npos, e, name, args, argNames)
                } else {
                    e = MemberExpr(ctx, file, npos, e, name)
                }
            } else {
                return e
            }
        }
    }

    /// args := (arg % ',') ')' ; arg := (IDENT ':')? expr
    private mutating func arguments() throws -> ([Expr], [String?]) {
        var args: [Expr] = [], argNames: [String?] = []
        while !isOp(")") {
            if case .ident(let n) = peek.tok, peekAhead(1).opText == ":" {
                advance(); advance()
                if argNames.contains(where: { $0 == n }) { throw error("argument '\(n)' given twice") }
                argNames.append(n)
            } else {
                if argNames.contains(where: { $0 != nil }) { throw error("positional argument after keyword arguments") }
                argNames.append(nil)
            }
            args.append(try expression())
            if !match(",") { break }
        }
        _ = try expect(")")
        return (args, argNames)
    }

    /// index := item (',' item)*
    /// item  := '...' | expr | expr? ':' expr? (':' expr?)?
    private mutating func indexOrSlice(_ object: Expr, _ pos: SourcePos) throws -> Expr {
        var items: [SubscriptItem] = []
        repeat {
            if isOp("]") { break }
            items.append(try subscriptItem(pos))
        } while match(",")
        _ = try expect("]")
        switch items.count {
        case 0: throw error("empty index", at: pos)
        case 1:
            if case .index(let e) = items[0] { return IndexExpr(ctx, file, pos, object, e) }
            if case .slice(let a, let b, let c) = items[0] { return SliceExpr(ctx, file, pos, object, a, b, c) }
            return MultiIndexExpr(ctx, file, pos, object, items)
        default: return MultiIndexExpr(ctx, file, pos, object, items)
        }
    }

    private mutating func subscriptItem(_ pos: SourcePos) throws -> SubscriptItem {
        if match("...") { return .ellipsis }
        var start: Expr?
        if !isOp(":") { start = try expression() }
        guard match(":") else {
            guard let start else { throw error("empty index", at: pos) }
            return .index(start)
        }
        var end: Expr?, step: Expr?
        if !isOp(":") && !isOp("]") && !isOp(",") { end = try expression() }
        if match(":") && !isOp("]") && !isOp(",") { step = try expression() }
        return .slice(start, end, step)
    }

    /// primary := literal | IDENT | '(' expr ')' | list | map | 'fn' params body | string
    private mutating func primary() throws -> Expr {
        let t = peek
        switch t.tok {
        case .int(let n): advance(); return ConstExpr(ctx, file, t.pos, .int(n))
        case .float(let d): advance(); return ConstExpr(ctx, file, t.pos, .float(d))
        case .string(let parts): advance(); return try stringExpr(parts, t.pos)
        case .keyword("true"): advance(); return ConstExpr(ctx, file, t.pos, .bool(true))
        case .keyword("false"): advance(); return ConstExpr(ctx, file, t.pos, .bool(false))
        case .keyword("nil"): advance(); return ConstExpr(ctx, file, t.pos, .nil_)
        case .keyword("fn"):
            advance()
            return FunctionExpr(ctx, file, t.pos, try functionRest(name: "anonymous function", pos: t.pos))
        case .ident(let name):
            advance()
            let (target, isConst) = resolve(name)
            let e: Expr
            switch target {
            case .local(let s): e = LocalGet(ctx, file, t.pos, slot: s)
            case .upvalue(let d, let s): e = UpvalueGet(ctx, file, t.pos, depth: d, slot: s)
            case .global(let g): e = GlobalGet(ctx, file, t.pos, index: g)
            }
            names[ObjectIdentifier(e)] = (name, target, isConst)
            return e
        case .op("("):
            advance()
            let e = try expression()
            _ = try expect(")")
            return e
        case .op("["):
            advance()
            var items: [Expr] = []
            while !isOp("]") {
                items.append(try expression())
                if !match(",") { break }
            }
            _ = try expect("]")
            return ListExpr(ctx, file, t.pos, items)
        case .op("{"):
            advance()
            var keys: [Expr] = [], values: [Expr] = []
            skipNewlines()
            while !isOp("}") {
                keys.append(try expression())
                skipNewlines()
                _ = try expect(":")
                skipNewlines()
                values.append(try expression())
                skipNewlines()
                if !match(",") { break }
                skipNewlines()
            }
            skipNewlines()
            _ = try expect("}")
            return MapExpr(ctx, file, t.pos, keys, values)
        default:
            throw unexpected("an expression")
        }
    }

    private mutating func stringExpr(_ parts: [StrPart], _ pos: SourcePos) throws -> Expr {
        if parts.count == 1, case .text(let s) = parts[0] { return ConstExpr(ctx, file, pos, .string(s)) }
        var out: [InterpolationExpr.Part] = []
        for p in parts {
            switch p {
            case .text(let s): out.append(.text(s))
            case .expr(let toks, let spec, let epos):
                let savedTokens = tokens, savedI = i
                tokens = toks
                i = 0
                defer { tokens = savedTokens; i = savedI }
                let e = try expression()
                guard peek.isEOF else { throw error("unexpected \(describe(peek)) in '{…}'") }
                var format: FormatSpec?
                if let spec {
                    do { format = try FormatSpec(spec) } catch { throw self.error("bad format spec '\(spec)': \(error)", at: epos) }
                }
                out.append(.value(e, format))
            }
        }
        return InterpolationExpr(ctx, file, pos, out)
    }
}

/// Parses a builtin's signature row: `name(a, b = 1, *rest)`.
func parseSignature(_ signature: String) throws -> (String, [Param]) {
    let file = SourceFile(name: "<signature>", text: signature)
    var lexer = Lexer(file: file)
    let toks = try lexer.tokenize().filter { !$0.isNewline }
    var i = 0
    func bad() -> ScriptError { ScriptError("malformed builtin signature '\(signature)'") }
    guard case .ident(let name) = toks[i].tok else { throw bad() }
    i += 1
    guard toks[i].opText == "(" else { throw bad() }
    i += 1
    var params: [Param] = []
    while toks[i].opText != ")" {
        var variadic = false
        if toks[i].opText == "*" { variadic = true; i += 1 }
        guard case .ident(let p) = toks[i].tok else { throw bad() }
        i += 1
        var dflt: Value?
        if toks[i].opText == "=" {
            i += 1
            var negative = false
            if toks[i].opText == "-" { negative = true; i += 1 }
            switch toks[i].tok {
            case .int(let n): dflt = .int(negative ? -n : n)
            case .float(let d): dflt = .float(negative ? -d : d)
            case .keyword("true"): dflt = .bool(true)
            case .keyword("false"): dflt = .bool(false)
            case .keyword("nil"): dflt = .nil_
            case .string(let parts):
                guard parts.count == 1, case .text(let s) = parts[0] else { throw bad() }
                dflt = .string(s)
            default: throw bad()
            }
            i += 1
        }
        params.append(Param(name: p, defaultValue: dflt, variadic: variadic))
        if toks[i].opText == "," { i += 1 } else if toks[i].opText != ")" { throw bad() }
        if i >= toks.count - 1 { throw bad() }
    }
    return (name, params)
}
