using System.Globalization;
using System.Text.Json;
using CsCheck;
using Warden.Core.Conditions;

namespace Warden.Core.Tests.Conditions;

/// <summary>
/// Random well-typed expressions over random JSON arguments: the compiled delegates must agree with a deliberately
/// naive tree-walking interpreter written from the CEL spec (values are plain objects, errors a marker).
/// </summary>
public sealed class PropertyTests
{
    private sealed class Err
    {
        public static readonly Err Instance = new();
    }

    private abstract record E
    {
        public abstract string Src { get; }

        public abstract object Eval(Dictionary<string, object?> args);
    }

    private sealed record Lit(object V) : E
    {
        public override string Src => V switch
        {
            bool b => b ? "true" : "false",
            long l => l.ToString(CultureInfo.InvariantCulture),
            string s => "'" + s + "'",
            _ => throw new InvalidOperationException(),
        };

        public override object Eval(Dictionary<string, object?> args) => V;
    }

    private sealed record Arg(string Name) : E
    {
        public override string Src => "args." + Name;

        public override object Eval(Dictionary<string, object?> args) => args.TryGetValue(Name, out var v) ? v! : Err.Instance;
    }

    private sealed record Has(string Name) : E
    {
        public override string Src => $"has(args.{Name})";

        public override object Eval(Dictionary<string, object?> args) => args.ContainsKey(Name);
    }

    private sealed record Not(E A) : E
    {
        public override string Src => $"!({A.Src})";

        public override object Eval(Dictionary<string, object?> args) => A.Eval(args) is bool b ? !b : Err.Instance;
    }

    private sealed record Logic(bool IsAnd, E A, E B) : E
    {
        public override string Src => $"({A.Src} {(IsAnd ? "&&" : "||")} {B.Src})";

        public override object Eval(Dictionary<string, object?> args)
        {
            var a = A.Eval(args);
            var b = B.Eval(args);
            var decisive = !IsAnd;
            if (a is bool x && x == decisive || b is bool y && y == decisive)
            {
                return decisive;
            }

            return a is bool && b is bool ? !decisive : Err.Instance;
        }
    }

    private sealed record Cond(E C, E A, E B) : E
    {
        public override string Src => $"({C.Src} ? {A.Src} : {B.Src})";

        public override object Eval(Dictionary<string, object?> args) => C.Eval(args) is bool c ? (c ? A.Eval(args) : B.Eval(args)) : Err.Instance;
    }

    private sealed record Cmp(string Op, E A, E B) : E
    {
        public override string Src => $"({A.Src} {Op} {B.Src})";

        public override object Eval(Dictionary<string, object?> args)
        {
            var a = A.Eval(args);
            var b = B.Eval(args);
            if (a is Err || b is Err)
            {
                return Err.Instance;
            }

            if (Op is "==" or "!=")
            {
                var eq = Equals(a, b);
                return Op == "==" ? eq : !eq;
            }

            int c;
            if (a is long la && b is long lb)
            {
                c = la.CompareTo(lb);
            }
            else if (a is string sa && b is string sb)
            {
                c = string.CompareOrdinal(sa, sb);
            }
            else if (a is bool ba && b is bool bb)
            {
                c = ba.CompareTo(bb);
            }
            else
            {
                return Err.Instance;
            }

            return Op switch { "<" => c < 0, "<=" => c <= 0, ">" => c > 0, _ => c >= 0 };
        }
    }

    private sealed record Arith(string Op, E A, E B) : E
    {
        public override string Src => $"({A.Src} {Op} {B.Src})";

        public override object Eval(Dictionary<string, object?> args)
        {
            // An int-typed argument may hold a string: CEL's '+' concatenates two strings.
            if (Op == "+" && A.Eval(args) is string sa && B.Eval(args) is string sb)
            {
                return sa + sb;
            }

            if (A.Eval(args) is not long a || B.Eval(args) is not long b)
            {
                return Err.Instance;
            }

            try
            {
                return Op switch
                {
                    "+" => checked(a + b),
                    "-" => checked(a - b),
                    "*" => checked(a * b),
                    "/" => b == 0 || (a == long.MinValue && b == -1) ? Err.Instance : a / b,
                    _ => b == 0 || (a == long.MinValue && b == -1) ? Err.Instance : a % b,
                };
            }
            catch (OverflowException)
            {
                return Err.Instance;
            }
        }
    }

    private sealed record Size(E A) : E
    {
        public override string Src => $"size({A.Src})";

        public override object Eval(Dictionary<string, object?> args) => A.Eval(args) switch
        {
            string s => (long)s.Length,
            List<object> l => (long)l.Count,
            _ => Err.Instance,
        };
    }

    private sealed record StartsWith(E A, string Prefix) : E
    {
        public override string Src => $"{A.Src}.startsWith('{Prefix}')";

        public override object Eval(Dictionary<string, object?> args) => A.Eval(args) is string s ? s.StartsWith(Prefix, StringComparison.Ordinal) : Err.Instance;
    }

    private sealed record In(E A, string ListArg) : E
    {
        public override string Src => $"{A.Src} in args.{ListArg}";

        public override object Eval(Dictionary<string, object?> args)
        {
            var a = A.Eval(args);
            var l = args.GetValueOrDefault(ListArg);
            if (a is Err || l is null)
            {
                return Err.Instance;
            }

            return l is List<object> list ? list.Any(x => Equals(x, a)) : Err.Instance;
        }
    }

    private sealed record Quant(string Kind, string ListArg, string Op, long Bound) : E
    {
        public override string Src => $"args.{ListArg}.{Kind}(x, x {Op} {Bound})";

        public override object Eval(Dictionary<string, object?> args)
        {
            if (args.GetValueOrDefault(ListArg) is not List<object> list)
            {
                return Err.Instance;
            }

            var results = list.Select(x => new Cmp(Op, new Lit(x), new Lit(Bound)).Eval(args)).ToList();
            var decisive = Kind == "exists";
            if (results.Any(r => r is bool b && b == decisive))
            {
                return decisive;
            }

            return results.Any(r => r is Err) ? Err.Instance : !decisive;
        }
    }

    private static readonly object MissingMarker = new();

    private static Gen<T> Pick<T>(params T[] items) => Gen.Int[0, items.Length - 1].Select(i => items[i]);

    private static readonly Gen<long> SmallInt = Gen.Frequency((8, Gen.Long[-5, 5]), (1, Gen.Const(long.MaxValue)), (1, Gen.Const(long.MinValue)));
    private static readonly Gen<string> SmallString = Pick("", "a", "ab", "b", "abc", "zz");

    private static readonly Dictionary<int, (Gen<E> B, Gen<E> I, Gen<E> S)> Memo = [];

    private static (Gen<E> B, Gen<E> I, Gen<E> S) Exprs(int depth)
    {
        if (Memo.TryGetValue(depth, out var m))
        {
            return m;
        }

        var intLeaf = Gen.OneOf<E>(SmallInt.Select(l => (E)new Lit(l)), Pick<E>(new Arg("i"), new Arg("j")));
        var strLeaf = Gen.OneOf<E>(SmallString.Select(s => (E)new Lit(s)), Gen.Const<E>(new Arg("s")));
        var boolLeaf = Gen.OneOf<E>(
            Gen.Bool.Select(b => (E)new Lit(b)),
            Gen.Const<E>(new Arg("b")),
            Pick("i", "s", "b", "l", "missing").Select(n => (E)new Has(n)));
        if (depth == 0)
        {
            return Memo[0] = (boolLeaf, intLeaf, strLeaf);
        }

        var (b, i, s) = Exprs(depth - 1);
        var cmpOp = Pick("==", "!=", "<", "<=", ">", ">=");
        var ints = Gen.Frequency(
            (3, intLeaf),
            (2, Gen.Select(Pick("+", "-", "*", "/", "%"), i, i, (o, x, y) => (E)new Arith(o, x, y))),
            (1, Gen.OneOf<E>(s.Select(x => (E)new Size(x)), Gen.Const<E>(new Size(new Arg("l"))))),
            (1, Gen.Select(b, i, i, (c, x, y) => (E)new Cond(c, x, y))));
        var strs = Gen.Frequency((3, strLeaf), (1, Gen.Select(b, s, s, (c, x, y) => (E)new Cond(c, x, y))));
        var bools = Gen.Frequency(
            (2, boolLeaf),
            (1, b.Select(x => (E)new Not(x))),
            (3, Gen.Select(Gen.Bool, b, b, (and, x, y) => (E)new Logic(and, x, y))),
            (3, Gen.Select(cmpOp, i, i, (o, x, y) => (E)new Cmp(o, x, y))),
            (1, Gen.Select(cmpOp, s, s, (o, x, y) => (E)new Cmp(o, x, y))),
            (1, Gen.Select(s, SmallString, (x, p) => (E)new StartsWith(x, p))),
            (1, Gen.Select(i, Pick("l", "missing"), (x, l) => (E)new In(x, l))),
            (1, Gen.Select(s, Pick("sl", "l"), (x, l) => (E)new In(x, l))),
            (1, Gen.Select(Pick("all", "exists"), Pick("l", "sl", "missing"), cmpOp, Gen.Long[-3, 3], (k, l, o, v) => (E)new Quant(k, l, o, v))),
            (1, Gen.Select(b, b, b, (c, x, y) => (E)new Cond(c, x, y))));
        return Memo[depth] = (bools, ints, strs);
    }

    private static readonly Gen<object> AnyScalar = Gen.Frequency(
        (6, SmallInt.Select(l => (object)l)),
        (2, SmallString.Select(s => (object)s)),
        (1, Gen.Bool.Select(b => (object)b)));

    private static readonly Gen<Dictionary<string, object?>> ArgsGen = Gen.Select(
        Gen.Frequency((8, SmallInt.Select(l => (object?)l)), (1, AnyScalar.Select(o => (object?)o)), (1, Gen.Const<object?>(MissingMarker))),
        Gen.Frequency((8, SmallInt.Select(l => (object?)l)), (1, Gen.Const<object?>(MissingMarker))),
        Gen.Frequency((8, SmallString.Select(s => (object?)s)), (1, AnyScalar.Select(o => (object?)o)), (1, Gen.Const<object?>(MissingMarker))),
        Gen.Frequency((8, Gen.Bool.Select(x => (object?)x)), (1, AnyScalar.Select(o => (object?)o)), (1, Gen.Const<object?>(MissingMarker))),
        Gen.Frequency((8, Gen.Long[-3, 3].Select(x => (object)x).Array[0, 5].Select(a => (object?)a.ToList())), (1, AnyScalar.Array[0, 3].Select(a => (object?)a.ToList())), (1, Gen.Const<object?>(MissingMarker))),
        Gen.Frequency((8, SmallString.Select(x => (object)x).Array[0, 4].Select(a => (object?)a.ToList())), (1, Gen.Const<object?>(MissingMarker))),
        (i, j, s, b, l, sl) =>
        {
            var d = new Dictionary<string, object?>();
            void Put(string k, object? v)
            {
                if (v != null && !ReferenceEquals(v, MissingMarker))
                {
                    d[k] = v;
                }
            }

            Put("i", i);
            Put("j", j);
            Put("s", s);
            Put("b", b);
            Put("l", l);
            Put("sl", sl);
            return d;
        });

    [Fact]
    public void Compiled_evaluation_matches_reference_interpreter()
    {
        var compiler = new ConditionCompiler(new ConditionEnvironment());
        var seen = new int[3];
        Check.Sample(
            Gen.Select(Exprs(4).B, ArgsGen),
            (expr, args) =>
            {
                var compiled = compiler.Compile(expr.Src);
                Assert.True(compiled.Success, expr.Src + ": " + string.Join("; ", compiled.Diagnostics));
                var json = JsonSerializer.Serialize(args);
                using var doc = JsonDocument.Parse(json);
                var actual = compiled.Condition!.Evaluate(new ConditionInput(doc.RootElement, null));
                var expected = expr.Eval(args) switch
                {
                    bool x => x ? ConditionOutcomeKind.True : ConditionOutcomeKind.False,
                    _ => ConditionOutcomeKind.Error,
                };
                Interlocked.Increment(ref seen[(int)actual.Kind]);
                Assert.True(expected == actual.Kind, $"{expr.Src} over {json}: expected {expected}, got {actual}");
            },
            iter: 3000,
            print: t => $"{t.Item1.Src} over {JsonSerializer.Serialize(t.Item2)}");

        // The generator must exercise all three outcomes, or the comparison proves little.
        Assert.All(seen, n => Assert.True(n > 100, string.Join(",", seen)));
    }

    // Policy-shaped leaves: each has a predicate form (see Conditions/Predicates.cs) except the last two, which the
    // predicate form reads through the general one.
    private static readonly string[] PolicyLeaves =
    [
        "args.a < 10.0", "args.a >= 3", "args.a > -1.5", "args.a <= 7", "args.r in lists.p", "args.r in lists.q",
        "args.r == 'x@y'", "args.r != 'x@y'", "has(args.c)", "args.r.endsWith('@y')", "args.r.startsWith('x')",
        "args.r.contains('@')", "size(args.l) > 1", "args.a == 3",
    ];

    private static readonly Gen<string> PolicyExpr = Gen.Recursive<string>((depth, self) => depth >= 4
        ? Pick(PolicyLeaves)
        : Gen.Frequency(
            (3, Pick(PolicyLeaves)),
            (1, self.Select(x => $"!({x})")),
            (3, Gen.Select(Pick("&&", "||"), self, self, (op, x, y) => $"({x} {op} {y})"))));

    private static readonly Gen<string> PolicyArgs = Gen.Select(
        Pick("\"a\":5", "\"a\":5.5", "\"a\":12", "\"a\":-3", "\"a\":1e1", "\"a\":\"5\"", "\"a\":null", "\"a\":true", ""),
        Pick("\"r\":\"x@y\"", "\"r\":\"z@y\"", "\"r\":\"x\\u0040y\"", "\"r\":7", "\"r\":[\"x@y\"]", "\"r\":\"\"", ""),
        Pick("\"c\":1", ""),
        Pick("\"l\":[1,2]", "\"l\":\"abc\"", "\"l\":3", ""),
        (a, r, c, l) => "{" + string.Join(",", new[] { a, r, c, l }.Where(x => x.Length > 0)) + "}");

    [Fact]
    public void Predicate_form_agrees_with_the_general_form()
    {
        // Policy decisions take the tri-state predicate form first and fall back to the general form only for
        // errors, so the two must agree on every outcome, with and without a decision's shared argument cache.
        var compiler = new ConditionCompiler(new ConditionEnvironment
        {
            Lists = new Dictionary<string, IReadOnlyList<string>> { ["p"] = ["x@y", "z@y"], ["q"] = ["x@y"] },
        });
        var seen = new int[3];
        Check.Sample(
            Gen.Select(PolicyExpr, PolicyArgs),
            (src, json) =>
            {
                var c = compiler.Compile(src).Condition ?? throw new InvalidOperationException("does not compile: " + src);
                using var doc = JsonDocument.Parse(json);
                var dict = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
                var general = new ConditionInput(dict, null);
                var v = c.EvaluateValue(general);
                var expected = v.Kind == Kind.Bool ? (v.AsBool ? ConditionOutcome.True : ConditionOutcome.False)
                    : ConditionOutcome.Error(v.Kind == Kind.Error ? v.ErrorMessage : "condition produced " + v.TypeName + ", not bool");
                Interlocked.Increment(ref seen[(int)expected.Kind]);
                Assert.Equal(expected, c.Evaluate(new ConditionInput(doc.RootElement, null)));
                Assert.Equal(expected, c.Evaluate(general));
                var cache = ArgCache.Rent();
                try
                {
                    // Twice through one cache, as rules sharing a test do in one decision.
                    for (var i = 0; i < 2; i++)
                    {
                        var frame = new Frame { ArgsDictionary = dict, Cache = cache };
                        var tri = c.Predicate(ref frame);
                        if (tri == Tri.Other)
                        {
                            // Undecided only for an error, or for a condition without a predicate form.
                            Assert.True(expected.IsError || !c.HasPredicate, $"{src} over {json}: predicate undecided, expected {expected}");
                        }
                        else
                        {
                            Assert.Equal(expected.IsTrue ? Tri.True : Tri.False, tri);
                        }

                        Assert.Equal(expected, c.Evaluate(new ConditionInput(dict, null) { Cache = cache }));
                    }
                }
                finally
                {
                    ArgCache.Return(cache);
                }
            },
            iter: 3000,
            print: t => $"{t.Item1} over {t.Item2}");

        Assert.All(seen, n => Assert.True(n > 100, string.Join(",", seen)));
    }

    [Fact]
    public void Named_list_set_finds_exactly_its_members_and_flags_every_escape()
    {
        // Membership hashes a JSON string's raw bytes and detects escapes in the same pass, word by word with an
        // overlapping last word: every length (0 to 40, across the 4- and 8-byte boundaries) and position counts.
        var alphabet = "ab\\@.\u00e9"u8.ToArray();
        var bytes = Gen.Int[0, alphabet.Length - 1].Select(i => alphabet[i]).Array[0, 40];
        Check.Sample(
            Gen.Select(bytes.Array[1, 6], bytes, Gen.Int[0, 9]),
            (members, other, pick) =>
            {
                // Half the probes are members (the rest almost never are).
                var probe = pick < members.Length ? members[pick] : other;
                var set = new Utf8Set(members.Distinct(new ByteArrayComparer()));
                var isMember = members.Any(m => m.AsSpan().SequenceEqual(probe));
                var hasBackslash = Array.IndexOf(probe, (byte)'\\') >= 0;
                Assert.Equal(isMember, set.Contains(probe));
                Assert.Equal(isMember && !hasBackslash, set.ContainsUnescaped(probe, out var escaped));
                Assert.Equal(hasBackslash, escaped);
                Assert.Equal(Utf8Set.Hash(probe), Utf8Set.Hash(probe, out _));
            },
            iter: 5000);
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => (int)Utf8Set.Hash(obj);
    }
}
