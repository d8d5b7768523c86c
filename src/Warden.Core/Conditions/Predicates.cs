using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Warden.Core.Conditions;

/// <summary>
/// A compiled boolean node in tri-state form: <see cref="Tri.False"/>, <see cref="Tri.True"/>, or
/// <see cref="Tri.Other"/> for anything else (an error, or a value that is not a bool).
/// </summary>
/// <remarks>
/// Policy conditions are mostly <c>&amp;&amp;</c> and <c>||</c> over a few argument tests. In the general form every
/// node returns a whole <see cref="Value"/> (40 bytes) through a delegate, and the evaluation entry converts the
/// result into an outcome; for such conditions that plumbing costs more than the tests. A predicate answers with an
/// int. It never explains itself: on <see cref="Tri.Other"/> the caller evaluates the general form, which gives the
/// same kind of result (both forms run the same operations over the same input) together with the error message.
/// </remarks>
internal delegate int Pred(ref Frame frame);

/// <summary>The three answers of a <see cref="Pred"/>.</summary>
internal static class Tri
{
    public const int False = 0;
    public const int True = 1;

    /// <summary>Not a plain bool: an error or a non-bool value; evaluate the general form for the details.</summary>
    public const int Other = 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Of(in Value v) => v.Kind == Kind.Bool ? (v.AsBool ? True : False) : Other;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Of(bool b) => b ? True : False;
}

internal sealed partial class Emitter
{
    // Compiled delegates that also have a predicate form (see Pred).
    private readonly Dictionary<Eval, Pred> _preds = new(ReferenceEqualityComparer.Instance);

    /// <summary>The predicate form of a compiled node, when it has one.</summary>
    public Pred? PredOf(Eval e) => _preds.TryGetValue(e, out var p) ? p : null;

    private Eval WithPred(Eval e, Pred? p)
    {
        if (p is not null)
        {
            _preds[e] = p;
        }

        return e;
    }

    /// <summary>
    /// <c>a &amp;&amp; b</c> and <c>a || b</c> as predicates, when at least one side has a predicate form (the other
    /// is read through its general form). CEL's commutative rules in tri-state: a decisive value on either side
    /// wins; otherwise two plain bools give a bool and anything else is <see cref="Tri.Other"/>, exactly when the
    /// general form returns an error.
    /// </summary>
    private Pred? LogicPred(Eval l, Eval r, bool isAnd)
    {
        var pl = PredOf(l);
        var pr = PredOf(r);
        if (pl is null && pr is null)
        {
            return null;
        }

        pl ??= (ref Frame f) => Tri.Of(l(ref f));
        pr ??= (ref Frame f) => Tri.Of(r(ref f));
        if (isAnd)
        {
            return (ref Frame f) =>
            {
                var a = pl(ref f);
                if (a == Tri.False)
                {
                    return Tri.False;
                }

                var b = pr(ref f);
                if (b == Tri.False)
                {
                    return Tri.False;
                }

                // a and b are each True or Other here.
                return (a | b) == Tri.True ? Tri.True : Tri.Other;
            };
        }

        return (ref Frame f) =>
        {
            var a = pl(ref f);
            if (a == Tri.True)
            {
                return Tri.True;
            }

            var b = pr(ref f);
            if (b == Tri.True)
            {
                return Tri.True;
            }

            // a and b are each False or Other here.
            return (a | b) == Tri.False ? Tri.False : Tri.Other;
        };
    }

    /// <summary><c>!a</c> when <c>a</c> has a predicate form.</summary>
    private Pred? NotPred(Eval a)
    {
        if (PredOf(a) is not { } p)
        {
            return null;
        }

        return (ref Frame f) =>
        {
            var r = p(ref f);
            return r == Tri.Other ? Tri.Other : Tri.True - r;
        };
    }

    /// <summary>Reads <c>args.NAME</c> for a predicate, through the decision's <see cref="ArgCache"/> when there is one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool ReadArg(ref Frame f, string name, out Value v)
    {
        if (f.Cache is { } c && c.IndexOf(ref f, name) is >= 0 and var i)
        {
            ref var e = ref c.At(i);
            v = e.Value;
            return e.Present;
        }

        return ArgsField(ref f, name, out v);
    }

    /// <summary><see cref="CompareToConst"/> answering in tri-state, without building a bool value on the common paths.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int CompareToConstTri(in Value x, in Value c, int lo, int hi)
    {
        if (c.Kind == Kind.Int)
        {
            if (x.Kind == Kind.Int)
            {
                var r = x.AsInt.CompareTo(c.AsInt);
                return Tri.Of(r >= lo && r <= hi);
            }
        }
        else
        {
            var d = c.AsDouble;
            if (!double.IsNaN(d))
            {
                if (x.Kind == Kind.Double && !double.IsNaN(x.AsDouble))
                {
                    var r = x.AsDouble.CompareTo(d);
                    return Tri.Of(r >= lo && r <= hi);
                }

                if (x.Kind == Kind.Int && x.AsInt is >= -(1L << 53) and <= 1L << 53)
                {
                    var r = ((double)x.AsInt).CompareTo(d);
                    return Tri.Of(r >= lo && r <= hi);
                }
            }
        }

        return Tri.Of(Order(x, c, lo, hi));
    }

    /// <summary>The predicate form of <see cref="OrderingConst"/>.</summary>
    private static Pred OrderingConstPred(Eval a, Value c, string op, string? argField)
    {
        var (lo, hi) = op switch { "_<_" => (-1, -1), "_<=_" => (-1, 0), "_>_" => (1, 1), _ => (0, 1) };
        if (argField is not null)
        {
            var name = string.Intern(argField);
            return (ref Frame f) => f.Cache is { } cache && cache.IndexOf(ref f, name) is >= 0 and var i
                ? CachedCompareToConst(ref cache.At(i), c, lo, hi)
                : ArgCompareToConst(ref f, name, c, lo, hi);
        }

        return (ref Frame f) => CompareToConstTri(a(ref f), c, lo, hi);
    }

    /// <summary>The predicate form of <see cref="EqualityStringLiteral"/>.</summary>
    private static Pred EqualityStringLiteralPred(Eval a, Value lit, bool negate, string? argField)
    {
        var utf8 = Encoding.UTF8.GetBytes((string)lit.Obj!);
        if (argField is null)
        {
            return (ref Frame f) => EqualsLiteral(ref f, a(ref f), lit, utf8, negate);
        }

        var name = string.Intern(argField);
        var hash = Utf8Set.Hash(utf8);
        return (ref Frame f) =>
        {
            if (f.Cache is null)
            {
                if (!TryArgJson(ref f, name, out var je))
                {
                    return Tri.Other;
                }

                if (TryRawString(je, out var text))
                {
                    return Tri.Of(text.SequenceEqual(utf8) != negate);
                }

                return EqualsLiteral(ref f, je, lit, utf8, negate);
            }

            return CachedEqualsLiteral(ref f, name, lit, utf8, hash, negate);
        };
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int EqualsLiteral(ref Frame f, JsonElement je, in Value lit, byte[] utf8, bool negate) =>
        EqualsLiteral(ref f, Value.FromJson(je), lit, utf8, negate);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int CachedEqualsLiteral(ref Frame f, string name, in Value lit, byte[] utf8, ulong hash, bool negate)
    {
        if (f.Cache is { } c && c.IndexOf(ref f, name) is >= 0 and var i)
        {
            ref var e = ref c.At(i);
            if (!e.Present)
            {
                return Tri.Other;
            }

            // Rules compare one argument with many literals (a deny list spelled out rule by rule): the argument's
            // UTF-8 is hashed once per decision, and a literal with another hash cannot be equal.
            if (e.RawHashState == 0)
            {
                e.RawHashState = 2;
                if (e.Value.Kind == Kind.String && e.Value.IsJson && Str.TryRawUtf8(e.Value, out var raw))
                {
                    e.RawHash = Utf8Set.Hash(raw);
                    e.RawHashState = 1;
                }
            }

            if (e.RawHashState == 1 && e.RawHash != hash)
            {
                return Tri.Of(negate);
            }

            return EqualsLiteral(ref f, e.Value, lit, utf8, negate);
        }

        return ArgsField(ref f, name, out var x) ? EqualsLiteral(ref f, x, lit, utf8, negate) : Tri.Other;
    }

    private static int EqualsLiteral(ref Frame f, in Value x, in Value lit, byte[] utf8, bool negate)
    {
        if (x.Kind == Kind.String)
        {
            var eq = x.IsJson && Str.TryRawUtf8(x, out var raw) ? raw.SequenceEqual(utf8) : Str.Equal(x, lit);
            return Tri.Of(eq != negate);
        }

        if (x.IsError)
        {
            return Tri.Other;
        }

        var r = Ops.Equal(x, lit, ref f.Budget, 0);
        return r.Kind == Kind.Bool ? Tri.Of(r.AsBool != negate) : Tri.Other;
    }

    /// <summary>The predicate form of <see cref="ArgInList"/>, sharing its per-decision memo in the <see cref="ArgCache"/>.</summary>
    private static Pred ArgInListPred(string field, string listName, StringSetList set)
    {
        var name = string.Intern(field);
        return (ref Frame f) => f.Cache is { } c && c.IndexOf(ref f, name) is >= 0 and var i
            ? CachedInList(ref c.At(i), listName, set)
            : ArgInSet(ref f, name, set);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int CachedInList(ref ArgCache.Entry e, string listName, StringSetList set)
    {
        if (!e.Present)
        {
            return Tri.Other;
        }

        if (ReferenceEquals(e.List0, listName))
        {
            return Tri.Of(e.Member0);
        }

        if (ReferenceEquals(e.List1, listName))
        {
            return Tri.Of(e.Member1);
        }

        var member = e.Value.Kind == Kind.String && set.Contains(e.Value);
        if (e.List0 is null)
        {
            (e.List0, e.Member0) = (listName, member);
        }
        else if (e.List1 is null)
        {
            (e.List1, e.Member1) = (listName, member);
        }

        return Tri.Of(member);
    }

    /// <summary><c>has(args.NAME)</c>: never an error.</summary>
    private static Pred ArgsHasPred(string name) => (ref Frame f) =>
    {
        if (f.Cache is { } c && c.IndexOf(ref f, name) is >= 0 and var i)
        {
            return Tri.Of(c.At(i).Present);
        }

        return Tri.Of(ArgsHas(ref f, name));
    };

    /// <summary>The predicate form of <c>args.NAME.startsWith/endsWith/contains('literal')</c>.</summary>
    private static Pred ArgStringTestPred(string field, string needle, byte[] utf8, int mode)
    {
        var name = string.Intern(field);
        return (ref Frame f) =>
        {
            if (f.Cache is null)
            {
                if (!TryArgJson(ref f, name, out var je))
                {
                    return Tri.Other;
                }

                if (TryRawString(je, out var raw))
                {
                    return Tri.Of(mode switch
                    {
                        0 => raw.StartsWith(utf8),
                        1 => raw.EndsWith(utf8),
                        _ => raw.IndexOf(utf8) >= 0,
                    });
                }

                return StringTest(je, needle, utf8, mode);
            }

            return CachedStringTest(ref f, name, needle, utf8, mode);
        };
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int StringTest(JsonElement je, string needle, byte[] utf8, int mode) => Tri.Of(StrTestLiteral(Value.FromJson(je), needle, utf8, mode));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int CachedStringTest(ref Frame f, string name, string needle, byte[] utf8, int mode) =>
        ReadArg(ref f, name, out var v) ? Tri.Of(StrTestLiteral(v, needle, utf8, mode)) : Tri.Other;

    // Without a decision's cache, a predicate reads the argument's JSON token directly: building a Value for one
    // test costs as much as the test (the value is wide, and JsonElement's accessors are not free).

    /// <summary><c>args.NAME</c> as its JSON element, as <see cref="ArgsField"/> finds it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryArgJson(ref Frame f, string name, out JsonElement je)
    {
        if (f.ArgsDictionary is { } d)
        {
            return d.TryGetValue(name, out je);
        }

        if (f.ArgsElement.ValueKind == JsonValueKind.Object)
        {
            return f.ArgsElement.TryGetProperty(name, out je);
        }

        je = default;
        return false;
    }

    // The JSON token's raw text says what it is (a string starts with a quote; only a number's text passes
    // JsonNumber.TryFast), so the predicates do not ask the element for its kind first. An undefined element
    // throws here, which sends the condition to its general form, where it is an error as before.

    /// <summary>A JSON string's UTF-8 between the quotes, when the element is a string without escapes (then it is the string's UTF-8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryRawString(JsonElement je, out ReadOnlySpan<byte> utf8)
    {
        utf8 = JsonMarshal.GetRawUtf8Value(je);
        if (utf8.Length < 2 || utf8[0] != (byte)'"')
        {
            return false;
        }

        utf8 = utf8[1..^1];
        return utf8.IndexOf((byte)'\\') < 0;
    }

    /// <summary><c>args.NAME op literal</c> straight from the JSON number's text (same conversion as <see cref="Value.FromJson"/>).</summary>
    private static int ArgCompareToConst(ref Frame f, string name, in Value c, int lo, int hi)
    {
        if (!TryArgJson(ref f, name, out var je))
        {
            return Tri.Other;
        }

        if (!JsonNumber.TryFast(JsonMarshal.GetRawUtf8Value(je), out var isInt, out var l, out var d))
        {
            return CompareJson(je, c, lo, hi);
        }

        int r;
        if (c.Kind == Kind.Int)
        {
            if (!isInt)
            {
                return CompareNumber(isInt, l, d, c, lo, hi);
            }

            r = l.CompareTo(c.AsInt);
        }
        else
        {
            var t = c.AsDouble;
            if (double.IsNaN(t) || (isInt && l is < -(1L << 53) or > 1L << 53))
            {
                return CompareNumber(isInt, l, d, c, lo, hi);
            }

            r = (isInt ? l : d).CompareTo(t);
        }

        return Tri.Of(r >= lo && r <= hi);
    }

    // The uncommon cases live out of line, so the common path's frame holds no Value.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int CompareJson(JsonElement je, in Value c, int lo, int hi) => CompareToConstTri(Value.FromJson(je), c, lo, hi);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int CompareNumber(bool isInt, long l, double d, in Value c, int lo, int hi) =>
        CompareToConstTri(isInt ? Value.Int(l) : Value.Double(d), c, lo, hi);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int CachedCompareToConst(ref ArgCache.Entry e, in Value c, int lo, int hi) =>
        e.Present ? CompareToConstTri(e.Value, c, lo, hi) : Tri.Other;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool ContainsJson(StringSetList set, JsonElement je) => set.Contains(Value.FromJson(je));

    /// <summary><c>args.NAME in lists.LIST</c> straight from the JSON string's UTF-8.</summary>
    private static int ArgInSet(ref Frame f, string name, StringSetList set)
    {
        if (!TryArgJson(ref f, name, out var je))
        {
            return Tri.Other;
        }

        var raw = JsonMarshal.GetRawUtf8Value(je);
        if (raw.Length < 2 || raw[0] != (byte)'"')
        {
            // As the general form: only strings can be members.
            return Tri.False;
        }

        raw = raw[1..^1];
        var member = set.Utf8.ContainsUnescaped(raw, out var escaped);
        return Tri.Of(escaped ? ContainsJson(set, je) : member);
    }
}
