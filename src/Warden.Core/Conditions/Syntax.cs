using System.Globalization;
using System.Text;

namespace Warden.Core.Conditions;

/// <summary>A syntax node. <see cref="Pos"/> is an offset into the source, turned into line/column for diagnostics.</summary>
internal abstract class Node
{
    protected Node(int pos) => Pos = pos;

    public int Pos { get; }
}

internal sealed class LiteralNode(int pos, Value value) : Node(pos)
{
    public Value Value { get; } = value;
}

internal sealed class IdentNode(int pos, string name) : Node(pos)
{
    public string Name { get; } = name;
}

internal sealed class SelectNode(int pos, Node operand, string field) : Node(pos)
{
    public Node Operand { get; } = operand;
    public string Field { get; } = field;
}

internal sealed class CallNode(int pos, string function, Node? target, IReadOnlyList<Node> args) : Node(pos)
{
    public string Function { get; } = function;
    public Node? Target { get; } = target;
    public IReadOnlyList<Node> Args { get; } = args;
}

internal sealed class ListNode(int pos, IReadOnlyList<Node> items) : Node(pos)
{
    public IReadOnlyList<Node> Items { get; } = items;
}

internal sealed class MapNode(int pos, IReadOnlyList<(Node Key, Node Value)> entries) : Node(pos)
{
    public IReadOnlyList<(Node Key, Node Value)> Entries { get; } = entries;
}

internal sealed class MessageNode(int pos, string typeName, IReadOnlyList<(string Field, Node Value)> fields) : Node(pos)
{
    public string TypeName { get; } = typeName;
    public IReadOnlyList<(string Field, Node Value)> Fields { get; } = fields;
}

/// <summary>A parse failure at a source offset; caught by the compiler and turned into a diagnostic.</summary>
internal sealed class SyntaxError(int pos, string message, string? hint = null) : Exception(message)
{
    public int Pos { get; } = pos;
    public string? Hint { get; } = hint;
}

internal enum Tok : byte
{
    End,
    Ident,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Punct,
}

internal readonly record struct Token(Tok Kind, int Pos, string Text, object? Literal);

/// <summary>Tokenizer for the CEL grammar (identifiers, numbers, all string/bytes literal forms, operators).</summary>
internal sealed class Lexer
{
    private static readonly string[] Puncts = ["&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/", "%", "?", ":", ".", ",", "(", ")", "[", "]", "{", "}", "="];
    private readonly string _s;
    private int _i;

    public Lexer(string source) => _s = source;

    public List<Token> All()
    {
        var list = new List<Token>();
        while (true)
        {
            var t = Next();
            list.Add(t);
            if (t.Kind == Tok.End)
            {
                return list;
            }
        }
    }

    private Token Next()
    {
        SkipSpace();
        if (_i >= _s.Length)
        {
            return new Token(Tok.End, _i, "", null);
        }

        var c = _s[_i];
        var start = _i;
        if (char.IsAsciiLetter(c) || c == '_')
        {
            // String prefixes: r, b, rb, br (any case).
            var j = _i;
            var raw = false;
            var bytes = false;
            while (j < _s.Length && j - _i < 2 && (_s[j] is 'r' or 'R' or 'b' or 'B'))
            {
                if (_s[j] is 'r' or 'R')
                {
                    raw = true;
                }
                else
                {
                    bytes = true;
                }

                j++;
                if (j < _s.Length && _s[j] is '"' or '\'')
                {
                    _i = j;
                    return ReadString(start, raw, bytes);
                }
            }

            while (_i < _s.Length && (char.IsAsciiLetterOrDigit(_s[_i]) || _s[_i] == '_'))
            {
                _i++;
            }

            return new Token(Tok.Ident, start, _s[start.._i], null);
        }

        if (char.IsAsciiDigit(c) || (c == '.' && _i + 1 < _s.Length && char.IsAsciiDigit(_s[_i + 1])))
        {
            return ReadNumber();
        }

        if (c is '"' or '\'')
        {
            return ReadString(start, false, false);
        }

        // Backquoted field names (`content-type`) let selections reach keys that are not identifiers.
        if (c == '`')
        {
            var close = _s.IndexOf('`', _i + 1);
            if (close < 0)
            {
                throw new SyntaxError(start, "unterminated quoted identifier");
            }

            _i = close + 1;
            return new Token(Tok.Ident, start, _s[(start + 1)..close], "quoted");
        }

        foreach (var p in Puncts)
        {
            if (string.CompareOrdinal(_s, _i, p, 0, p.Length) == 0)
            {
                _i += p.Length;
                return new Token(Tok.Punct, start, p, null);
            }
        }

        throw new SyntaxError(start, $"unexpected character '{c}'");
    }

    private void SkipSpace()
    {
        while (_i < _s.Length)
        {
            if (char.IsWhiteSpace(_s[_i]))
            {
                _i++;
            }
            else if (_s[_i] == '/' && _i + 1 < _s.Length && _s[_i + 1] == '/')
            {
                while (_i < _s.Length && _s[_i] != '\n')
                {
                    _i++;
                }
            }
            else
            {
                return;
            }
        }
    }

    private Token ReadNumber()
    {
        var start = _i;
        if (_s[_i] == '0' && _i + 1 < _s.Length && (_s[_i + 1] is 'x' or 'X'))
        {
            _i += 2;
            var hs = _i;
            while (_i < _s.Length && char.IsAsciiHexDigit(_s[_i]))
            {
                _i++;
            }

            var hex = _s[hs.._i];
            if (hex.Length == 0)
            {
                throw new SyntaxError(start, "invalid hex literal");
            }

            if (_i < _s.Length && _s[_i] is 'u' or 'U')
            {
                _i++;
                return ulong.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hu)
                    ? new Token(Tok.Uint, start, _s[start.._i], hu)
                    : throw new SyntaxError(start, "uint literal out of range");
            }

            return ulong.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hv)
                ? new Token(Tok.Int, start, _s[start.._i], hv)
                : throw new SyntaxError(start, "int literal out of range");
        }

        var isDouble = false;
        while (_i < _s.Length && char.IsAsciiDigit(_s[_i]))
        {
            _i++;
        }

        if (_i < _s.Length && _s[_i] == '.' && _i + 1 < _s.Length && char.IsAsciiDigit(_s[_i + 1]))
        {
            isDouble = true;
            _i++;
            while (_i < _s.Length && char.IsAsciiDigit(_s[_i]))
            {
                _i++;
            }
        }

        if (_i < _s.Length && _s[_i] is 'e' or 'E')
        {
            var save = _i;
            _i++;
            if (_i < _s.Length && _s[_i] is '+' or '-')
            {
                _i++;
            }

            if (_i < _s.Length && char.IsAsciiDigit(_s[_i]))
            {
                isDouble = true;
                while (_i < _s.Length && char.IsAsciiDigit(_s[_i]))
                {
                    _i++;
                }
            }
            else
            {
                _i = save;
            }
        }

        var text = _s[start.._i];
        if (isDouble)
        {
            return new Token(Tok.Double, start, text, double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture));
        }

        if (_i < _s.Length && _s[_i] is 'u' or 'U')
        {
            _i++;
            return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var u)
                ? new Token(Tok.Uint, start, text, u)
                : throw new SyntaxError(start, "uint literal out of range");
        }

        // Kept as ulong so that the parser can fold -9223372036854775808.
        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v)
            ? new Token(Tok.Int, start, text, v)
            : throw new SyntaxError(start, "int literal out of range");
    }

    private Token ReadString(int start, bool raw, bool bytes)
    {
        var q = _s[_i];
        var triple = _i + 2 < _s.Length && _s[_i + 1] == q && _s[_i + 2] == q;
        _i += triple ? 3 : 1;
        var chars = new StringBuilder();
        var outBytes = bytes ? new List<byte>() : null;
        while (true)
        {
            if (_i >= _s.Length)
            {
                throw new SyntaxError(start, "unterminated string literal", "close the string with a matching quote");
            }

            var c = _s[_i];
            if (triple ? (c == q && _i + 2 < _s.Length && _s[_i + 1] == q && _s[_i + 2] == q) : c == q)
            {
                _i += triple ? 3 : 1;
                break;
            }

            if (!triple && c is '\n' or '\r')
            {
                throw new SyntaxError(start, "newline in string literal", "use a triple-quoted string or \\n");
            }

            if (c == '\\' && !raw)
            {
                ReadEscape(chars, outBytes);
                continue;
            }

            if (outBytes != null)
            {
                var len = char.IsHighSurrogate(c) && _i + 1 < _s.Length ? 2 : 1;
                outBytes.AddRange(Encoding.UTF8.GetBytes(_s.Substring(_i, len)));
                _i += len;
            }
            else
            {
                chars.Append(c);
                _i++;
            }
        }

        return outBytes != null
            ? new Token(Tok.Bytes, start, _s[start.._i], outBytes.ToArray())
            : new Token(Tok.String, start, _s[start.._i], chars.ToString());
    }

    private void ReadEscape(StringBuilder chars, List<byte>? bytes)
    {
        var at = _i;
        _i++;
        if (_i >= _s.Length)
        {
            throw new SyntaxError(at, "invalid escape");
        }

        var e = _s[_i++];
        int code;
        var isByte = false;
        switch (e)
        {
            case 'a': code = 7; break;
            case 'b': code = 8; break;
            case 'f': code = 12; break;
            case 'n': code = 10; break;
            case 'r': code = 13; break;
            case 't': code = 9; break;
            case 'v': code = 11; break;
            case '\\': code = '\\'; break;
            case '\'': code = '\''; break;
            case '"': code = '"'; break;
            case '`': code = '`'; break;
            case '?': code = '?'; break;
            case 'x':
            case 'X':
                code = Hex(2, at);
                isByte = true;
                break;
            case 'u':
                if (bytes != null)
                {
                    throw new SyntaxError(at, "\\u escapes are not allowed in bytes literals");
                }

                code = Hex(4, at);
                break;
            case 'U':
                if (bytes != null)
                {
                    throw new SyntaxError(at, "\\U escapes are not allowed in bytes literals");
                }

                code = Hex(8, at);
                break;
            case >= '0' and <= '3':
                if (_i + 1 >= _s.Length || !IsOctal(_s[_i]) || !IsOctal(_s[_i + 1]))
                {
                    throw new SyntaxError(at, "invalid octal escape");
                }

                code = ((e - '0') * 64) + ((_s[_i] - '0') * 8) + (_s[_i + 1] - '0');
                _i += 2;
                isByte = true;
                break;
            default:
                throw new SyntaxError(at, $"invalid escape '\\{e}'");
        }

        if (bytes != null)
        {
            if (isByte || code < 0x80)
            {
                bytes.Add((byte)code);
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(char.ConvertFromUtf32(code)));
            }

            return;
        }

        if (code is >= 0xD800 and <= 0xDFFF || code > 0x10FFFF)
        {
            throw new SyntaxError(at, "invalid code point in escape");
        }

        chars.Append(char.ConvertFromUtf32(code));
    }

    private static bool IsOctal(char c) => c is >= '0' and <= '7';

    private int Hex(int n, int at)
    {
        if (_i + n > _s.Length || !int.TryParse(_s.AsSpan(_i, n), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v))
        {
            throw new SyntaxError(at, "invalid hex escape");
        }

        _i += n;
        return v;
    }
}

/// <summary>Recursive-descent parser for CEL expressions. Recursion depth is capped so hostile sources cannot overflow the stack.</summary>
internal sealed class Parser
{
    private static readonly HashSet<string> Reserved =
    [
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop", "package",
        "namespace", "return", "var", "void", "while",
    ];

    private readonly List<Token> _t;
    private readonly int _maxDepth;
    private int _p;
    private int _depth;

    public Parser(string source, int maxDepth)
    {
        _t = new Lexer(source).All();
        _maxDepth = maxDepth;
    }

    public Node ParseAll()
    {
        var e = Expr();
        if (Peek.Kind != Tok.End)
        {
            throw new SyntaxError(Peek.Pos, $"unexpected '{Peek.Text}'", "check for a missing operator or an unbalanced parenthesis");
        }

        return e;
    }

    private Token Peek => _t[_p];

    private bool IsPunct(string p) => Peek.Kind == Tok.Punct && Peek.Text == p;

    private bool Accept(string p)
    {
        if (IsPunct(p))
        {
            _p++;
            return true;
        }

        return false;
    }

    private Token Expect(string p, string? hint = null)
    {
        if (!IsPunct(p))
        {
            var got = Peek.Kind == Tok.End ? "end of input" : $"'{Peek.Text}'";
            throw new SyntaxError(Peek.Pos, $"expected '{p}' but found {got}", hint);
        }

        return _t[_p++];
    }

    private void Enter()
    {
        if (++_depth > _maxDepth)
        {
            throw new SyntaxError(Peek.Pos, $"expression nested more than {_maxDepth} levels", "simplify the condition");
        }
    }

    private Node Expr()
    {
        Enter();
        var c = Or();
        if (IsPunct("?"))
        {
            var pos = _t[_p++].Pos;
            var a = Or();
            Expect(":", "a conditional needs both branches: c ? a : b");
            var b = Expr();
            c = new CallNode(pos, "_?_:_", null, [c, a, b]);
        }

        _depth--;
        return c;
    }

    private Node Or()
    {
        var l = And();
        while (IsPunct("||"))
        {
            var pos = _t[_p++].Pos;
            l = new CallNode(pos, "_||_", null, [l, And()]);
        }

        return l;
    }

    private Node And()
    {
        var l = Relation();
        while (IsPunct("&&"))
        {
            var pos = _t[_p++].Pos;
            l = new CallNode(pos, "_&&_", null, [l, Relation()]);
        }

        return l;
    }

    private Node Relation()
    {
        var l = Addition();
        while (true)
        {
            string? op = null;
            if (Peek.Kind == Tok.Punct && Peek.Text is "<" or "<=" or ">" or ">=" or "==" or "!=")
            {
                op = "_" + Peek.Text + "_";
            }
            else if (Peek.Kind == Tok.Ident && Peek.Text == "in")
            {
                op = "@in";
            }
            else if (IsPunct("="))
            {
                throw new SyntaxError(Peek.Pos, "unexpected '='", "use '==' to compare");
            }

            if (op == null)
            {
                return l;
            }

            var pos = _t[_p++].Pos;
            l = new CallNode(pos, op, null, [l, Addition()]);
        }
    }

    private Node Addition()
    {
        var l = Multiplication();
        while (Peek.Kind == Tok.Punct && Peek.Text is "+" or "-")
        {
            var t = _t[_p++];
            l = new CallNode(t.Pos, "_" + t.Text + "_", null, [l, Multiplication()]);
        }

        return l;
    }

    private Node Multiplication()
    {
        var l = Unary();
        while (Peek.Kind == Tok.Punct && Peek.Text is "*" or "/" or "%")
        {
            var t = _t[_p++];
            l = new CallNode(t.Pos, "_" + t.Text + "_", null, [l, Unary()]);
        }

        return l;
    }

    private Node Unary()
    {
        Enter();
        Node result;
        if (IsPunct("!"))
        {
            var pos = _t[_p++].Pos;
            result = new CallNode(pos, "!_", null, [Unary()]);
        }
        else if (IsPunct("-"))
        {
            var pos = _t[_p++].Pos;

            // Fold negative literals so that -9223372036854775808 is representable.
            if (Peek.Kind is Tok.Int or Tok.Double && !NextIsMemberAccess())
            {
                var t = _t[_p++];
                if (t.Kind == Tok.Double)
                {
                    result = new LiteralNode(pos, Value.Double(-(double)t.Literal!));
                }
                else
                {
                    var u = (ulong)t.Literal!;
                    if (u > 9223372036854775808UL)
                    {
                        throw new SyntaxError(t.Pos, "int literal out of range");
                    }

                    result = new LiteralNode(pos, Value.Int(unchecked(-(long)u)));
                }

                result = Member(result);
            }
            else
            {
                result = new CallNode(pos, "-_", null, [Unary()]);
            }
        }
        else
        {
            result = Member(Primary());
        }

        _depth--;
        return result;
    }

    private bool NextIsMemberAccess()
    {
        var n = _t[_p + 1];
        return n.Kind == Tok.Punct && n.Text is "." or "[";
    }

    private Node Member(Node e)
    {
        while (true)
        {
            if (IsPunct("."))
            {
                _p++;
                var name = Peek;
                if (name.Kind != Tok.Ident)
                {
                    throw new SyntaxError(name.Pos, "expected a field or method name after '.'");
                }

                _p++;
                if (IsPunct("("))
                {
                    _p++;
                    var args = ExprList(")");
                    e = new CallNode(name.Pos, name.Text, e, args);
                }
                else
                {
                    e = new SelectNode(name.Pos, e, name.Text);
                }
            }
            else if (IsPunct("["))
            {
                var pos = _t[_p++].Pos;
                var idx = Expr();
                Expect("]");
                e = new CallNode(pos, "_[_]", null, [e, idx]);
            }
            else
            {
                return e;
            }
        }
    }

    private List<Node> ExprList(string close)
    {
        var list = new List<Node>();
        if (Accept(close))
        {
            return list;
        }

        while (true)
        {
            list.Add(Expr());
            if (Accept(close))
            {
                return list;
            }

            Expect(",", $"separate items with ',' or close with '{close}'");
            if (Accept(close))
            {
                return list;
            }
        }
    }

    private Node Primary()
    {
        var t = Peek;
        switch (t.Kind)
        {
            case Tok.Int:
                _p++;
                var u = (ulong)t.Literal!;
                if (u > long.MaxValue)
                {
                    throw new SyntaxError(t.Pos, "int literal out of range", "use a uint literal (suffix u) for larger values");
                }

                return new LiteralNode(t.Pos, Value.Int((long)u));
            case Tok.Uint:
                _p++;
                return new LiteralNode(t.Pos, Value.Uint((ulong)t.Literal!));
            case Tok.Double:
                _p++;
                return new LiteralNode(t.Pos, Value.Double((double)t.Literal!));
            case Tok.String:
                _p++;
                return new LiteralNode(t.Pos, Value.String((string)t.Literal!));
            case Tok.Bytes:
                _p++;
                return new LiteralNode(t.Pos, Value.Bytes((byte[])t.Literal!));
            case Tok.Ident when t.Literal is null:
                return IdentOrCall();
            case Tok.End:
                throw new SyntaxError(t.Pos, "unexpected end of expression", "the condition is incomplete");
        }

        if (Accept("("))
        {
            var e = Expr();
            Expect(")", "unbalanced parenthesis");
            return e;
        }

        if (Accept("["))
        {
            return new ListNode(t.Pos, ExprList("]"));
        }

        if (Accept("{"))
        {
            var entries = new List<(Node, Node)>();
            if (!Accept("}"))
            {
                while (true)
                {
                    var k = Expr();
                    Expect(":", "map entries are key: value");
                    entries.Add((k, Expr()));
                    if (Accept("}"))
                    {
                        break;
                    }

                    Expect(",");
                    if (Accept("}"))
                    {
                        break;
                    }
                }
            }

            return new MapNode(t.Pos, entries);
        }

        if (IsPunct("."))
        {
            _p++;
            return IdentOrCall();
        }

        throw new SyntaxError(t.Pos, $"unexpected '{t.Text}'");
    }

    private Node IdentOrCall()
    {
        var t = Peek;
        if (t.Kind != Tok.Ident)
        {
            throw new SyntaxError(t.Pos, "expected an identifier");
        }

        _p++;
        switch (t.Text)
        {
            case "true": return new LiteralNode(t.Pos, Value.True);
            case "false": return new LiteralNode(t.Pos, Value.False);
            case "null": return new LiteralNode(t.Pos, Value.Null);
            case "in":
                throw new SyntaxError(t.Pos, "'in' is an operator", "write: x in list");
        }

        if (Reserved.Contains(t.Text))
        {
            throw new SyntaxError(t.Pos, $"'{t.Text}' is a reserved word");
        }

        if (IsPunct("("))
        {
            _p++;
            return new CallNode(t.Pos, t.Text, null, ExprList(")"));
        }

        // Qualified message construction: a.b.C{field: value}.
        var save = _p;
        var name = t.Text;
        while (IsPunct(".") && _t[_p + 1].Kind == Tok.Ident)
        {
            name += "." + _t[_p + 1].Text;
            _p += 2;
        }

        if (IsPunct("{") && char.IsAsciiLetterUpper(name[(name.LastIndexOf('.') + 1)..][0]))
        {
            _p++;
            var fields = new List<(string, Node)>();
            if (!Accept("}"))
            {
                while (true)
                {
                    var f = Peek;
                    if (f.Kind != Tok.Ident)
                    {
                        throw new SyntaxError(f.Pos, "expected a field name");
                    }

                    _p++;
                    Expect(":");
                    fields.Add((f.Text, Expr()));
                    if (Accept("}"))
                    {
                        break;
                    }

                    Expect(",");
                    if (Accept("}"))
                    {
                        break;
                    }
                }
            }

            return new MessageNode(t.Pos, name, fields);
        }

        _p = save;
        return new IdentNode(t.Pos, t.Text);
    }
}
