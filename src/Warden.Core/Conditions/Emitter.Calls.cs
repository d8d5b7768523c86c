using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Warden.Core.Conditions;

internal sealed partial class Emitter
{
    private static readonly string[] KnownFunctions =
    [
        "size", "startsWith", "endsWith", "contains", "matches", "lowerAscii", "upperAscii", "split", "trim", "join",
        "int", "uint", "double", "string", "bytes", "bool", "dyn", "type", "timestamp", "duration", "has",
        "all", "exists", "exists_one", "map", "filter",
        "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
        "domain", "url_host", "canonical_path", "path_within", "glob", "is_private_address", "is_metadata_address",
    ];

    private (CelType, Eval) Call(CallNode call, Scope? scope)
    {
        var fn = call.Function;
        switch (fn)
        {
            case "_&&_": return Logic(call, scope, isAnd: true);
            case "_||_": return Logic(call, scope, isAnd: false);
            case "_?_:_": return Conditional(call, scope);
            case "has" when call.Target == null: return Has(call, scope);
        }

        if (call.Target != null && Array.IndexOf(Macros, fn) >= 0)
        {
            return Macro(call, scope);
        }

        if (fn == "@in" && FusedHostIn(call, scope) is { } fused)
        {
            return fused;
        }

        // Receiver-style calls are compiled as functions whose first argument is the receiver.
        var nodes = call.Target != null ? [call.Target, .. call.Args] : call.Args.ToArray();
        var compiled = nodes.Select(a => Compile(a, scope)).ToArray();
        var types = compiled.Select(c => c.Item1).ToArray();
        var evals = compiled.Select(c => c.Item2).ToArray();
        var member = call.Target != null;

        switch (fn)
        {
            case "!_":
                Want(nodes[0], types[0], TKind.Bool, "operand of '!'");
                return (CelType.Bool, WithPred(Unary(evals[0], static (in Value a) => Ops.Not(a)), NotPred(evals[0])));
            case "-_":
                if (!(types[0].IsDyn || types[0].Kind is TKind.Int or TKind.Double or TKind.Duration))
                {
                    TypeError(call, $"cannot negate {types[0]}");
                }

                return (types[0], Unary(evals[0], static (in Value a) => Ops.Negate(a)));
            case "_==_":
            case "_!=_":
                CheckEquality(call, types[0], types[1]);
                return (CelType.Bool, nodes[1] is LiteralNode { Value.Kind: Kind.String } lit
                    ? WithPred(EqualityStringLiteral(evals[0], lit.Value, negate: fn == "_!=_"), EqualityStringLiteralPred(evals[0], lit.Value, fn == "_!=_", ArgField(evals[0])))
                    : Equality(evals[0], evals[1], negate: fn == "_!=_"));
            case "_<_":
            case "_<=_":
            case "_>_":
            case "_>=_":
                CheckOrdering(call, types[0], types[1]);
                return (CelType.Bool, nodes[1] is LiteralNode { Value.Kind: Kind.Int or Kind.Double } c
                    ? WithPred(OrderingConst(evals[0], c.Value, fn, ArgsFieldOf(nodes[0], scope)), OrderingConstPred(evals[0], c.Value, fn, ArgsFieldOf(nodes[0], scope)))
                    : Ordering(evals[0], evals[1], fn));
            case "@in":
                return In(call, types, evals, scope);
            case "_+_":
            case "_-_":
            case "_*_":
            case "_/_":
            case "_%_":
                return (Arithmetic(call, fn, types[0], types[1]), ArithmeticEval(fn, evals[0], evals[1]));
            case "_[_]":
                return Index(call, types, evals);
        }

        var result = Function(call, fn, member, nodes, types, evals);
        if (result.HasValue)
        {
            return result.Value;
        }

        if (_check)
        {
            Report(call, $"unknown function '{fn}'", Suggest(fn, KnownFunctions) ?? "see docs/conditions.md for the supported functions");
            return (CelType.Dyn, Fail("unknown function"));
        }

        return (CelType.Dyn, Fail("unbound function"));
    }

    private void Want(Node n, CelType t, TKind kind, string what)
    {
        if (!t.IsDyn && t.Kind != kind)
        {
            TypeError(n, $"{what} must be {kind.ToString().ToLowerInvariant()}, not {t}");
        }
    }

    private delegate Value Op1(in Value a);

    private delegate Value Op2(in Value a, in Value b);

    private static Eval Unary(Eval a, Op1 op) => (ref Frame f) => op(a(ref f));

    private static Eval Binary(Eval a, Eval b, Op2 op) => (ref Frame f) =>
    {
        var x = a(ref f);
        if (x.IsError)
        {
            return x;
        }

        var y = b(ref f);
        return y.IsError ? y : op(x, y);
    };

    // ---------------- logic ----------------

    private (CelType, Eval) Logic(CallNode call, Scope? scope, bool isAnd)
    {
        var (lt, l) = Compile(call.Args[0], scope);
        var (rt, r) = Compile(call.Args[1], scope);
        var op = isAnd ? "&&" : "||";
        Want(call.Args[0], lt, TKind.Bool, $"left operand of '{op}'");
        Want(call.Args[1], rt, TKind.Bool, $"right operand of '{op}'");

        // CEL's commutative short-circuit: a decisive value on either side wins over an error on the other.
        if (isAnd)
        {
            return (CelType.Bool, WithPred((ref Frame f) =>
            {
                var a = l(ref f);
                if (a.Kind == Kind.Bool && !a.AsBool)
                {
                    return Value.False;
                }

                var b = r(ref f);
                if (b.Kind == Kind.Bool)
                {
                    if (!b.AsBool)
                    {
                        return Value.False;
                    }

                    return a.Kind == Kind.Bool ? Value.True : a.IsError ? a : Ops.NoOverload;
                }

                return a.IsError ? a : b.IsError ? b : Ops.NoOverload;
            }, LogicPred(l, r, isAnd: true)));
        }

        return (CelType.Bool, WithPred((ref Frame f) =>
        {
            var a = l(ref f);
            if (a.Kind == Kind.Bool && a.AsBool)
            {
                return Value.True;
            }

            var b = r(ref f);
            if (b.Kind == Kind.Bool)
            {
                if (b.AsBool)
                {
                    return Value.True;
                }

                return a.Kind == Kind.Bool ? Value.False : a.IsError ? a : Ops.NoOverload;
            }

            return a.IsError ? a : b.IsError ? b : Ops.NoOverload;
        }, LogicPred(l, r, isAnd: false)));
    }

    private (CelType, Eval) Conditional(CallNode call, Scope? scope)
    {
        var (ct, c) = Compile(call.Args[0], scope);
        var (at, a) = Compile(call.Args[1], scope);
        var (bt, b) = Compile(call.Args[2], scope);
        Want(call.Args[0], ct, TKind.Bool, "condition of '?:'");
        return (CelType.Join(at, bt), (ref Frame f) =>
        {
            var cv = c(ref f);
            if (cv.Kind == Kind.Bool)
            {
                return cv.AsBool ? a(ref f) : b(ref f);
            }

            return cv.IsError ? cv : Ops.NoOverload;
        });
    }

    // ---------------- comparison ----------------

    private static bool Comparable(CelType a, CelType b)
    {
        if (a.IsDyn || b.IsDyn || a.Kind == TKind.Null || b.Kind == TKind.Null)
        {
            return true;
        }

        if (a.IsNumeric && b.IsNumeric)
        {
            return true;
        }

        if (a.Kind == TKind.Struct || b.Kind == TKind.Struct)
        {
            return a.FitsIn(b) || b.FitsIn(a);
        }

        if (a.Kind != b.Kind)
        {
            return false;
        }

        return a.Kind switch
        {
            TKind.List => Comparable(a.Elem!, b.Elem!),
            TKind.Map => Comparable(a.Elem!, b.Elem!) && Comparable(a.Value!, b.Value!),
            _ => true,
        };
    }

    private void CheckEquality(CallNode call, CelType a, CelType b)
    {
        if (!Comparable(a, b))
        {
            TypeError(call, $"cannot compare {a} with {b}", a.IsNumeric || b.IsNumeric ? "convert one side, e.g. int(x) or string(x)" : "both sides must have the same type");
        }
    }

    private void CheckOrdering(CallNode call, CelType a, CelType b)
    {
        if (a.IsDyn || b.IsDyn || (a.IsNumeric && b.IsNumeric))
        {
            return;
        }

        if (a.Kind != b.Kind || a.Kind is not (TKind.String or TKind.Bytes or TKind.Bool or TKind.Timestamp or TKind.Duration or TKind.Int or TKind.Uint or TKind.Double))
        {
            TypeError(call, $"cannot order {a} and {b}", "ordering needs two numbers, strings, bytes, bools, timestamps or durations");
        }
    }

    private static Eval Equality(Eval a, Eval b, bool negate) => (ref Frame f) =>
    {
        var x = a(ref f);
        if (x.IsError)
        {
            return x;
        }

        var y = b(ref f);
        if (y.IsError)
        {
            return y;
        }

        var r = Ops.Equal(x, y, ref f.Budget, 0);
        return negate && !r.IsError ? Value.Bool(!r.AsBool) : r;
    };

    private static Eval Ordering(Eval a, Eval b, string op)
    {
        // One delegate per operator keeps the comparison result test out of a second indirect call.
        return op switch
        {
            "_<_" => (ref Frame f) => Order(a(ref f), b(ref f), -1, -1),
            "_<=_" => (ref Frame f) => Order(a(ref f), b(ref f), -1, 0),
            "_>_" => (ref Frame f) => Order(a(ref f), b(ref f), 1, 1),
            _ => (ref Frame f) => Order(a(ref f), b(ref f), 0, 1),
        };
    }

    /// <summary>
    /// Comparison against a numeric literal, the common shape of policy thresholds. When the left side is
    /// <c>args.NAME</c>, the value comes straight from the decision's <see cref="ArgCache"/> entry.
    /// </summary>
    private static Eval OrderingConst(Eval a, Value c, string op, string? argField)
    {
        var (lo, hi) = op switch { "_<_" => (-1, -1), "_<=_" => (-1, 0), "_>_" => (1, 1), _ => (0, 1) };
        if (argField is not null)
        {
            var name = string.Intern(argField);
            var missing = Value.Error($"no such key: {argField}");
            return (ref Frame f) =>
            {
                if (f.Cache is { } cache && cache.IndexOf(ref f, name) is >= 0 and var i)
                {
                    ref var e = ref cache.At(i);
                    return e.Present ? CompareToConst(e.Value, c, lo, hi) : missing;
                }

                return CompareToConst(a(ref f), c, lo, hi);
            };
        }

        return (ref Frame f) => CompareToConst(a(ref f), c, lo, hi);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Value CompareToConst(in Value x, in Value c, int lo, int hi)
    {
        if (c.Kind == Kind.Int)
        {
            if (x.Kind == Kind.Int)
            {
                var r = x.AsInt.CompareTo(c.AsInt);
                return Value.Bool(r >= lo && r <= hi);
            }

            return Order(x, c, lo, hi);
        }

        var d = c.AsDouble;
        if (!double.IsNaN(d))
        {
            if (x.Kind == Kind.Double && !double.IsNaN(x.AsDouble))
            {
                var r = x.AsDouble.CompareTo(d);
                return Value.Bool(r >= lo && r <= hi);
            }

            // JSON integers against a decimal threshold (amount < 1000.0): exact while the int fits a double's
            // 53-bit significand; beyond that the general comparison decides.
            if (x.Kind == Kind.Int && x.AsInt is >= -(1L << 53) and <= 1L << 53)
            {
                var r = ((double)x.AsInt).CompareTo(d);
                return Value.Bool(r >= lo && r <= hi);
            }
        }

        return Order(x, c, lo, hi);
    }

    /// <summary><c>x == 'literal'</c>: unescaped JSON strings compare as UTF-8 bytes, without transcoding the literal per call.</summary>
    private static Eval EqualityStringLiteral(Eval a, Value lit, bool negate)
    {
        var utf8 = Encoding.UTF8.GetBytes((string)lit.Obj!);
        return (ref Frame f) =>
        {
            var x = a(ref f);
            if (x.Kind == Kind.String)
            {
                var eq = x.IsJson && Str.TryRawUtf8(x, out var raw) ? raw.SequenceEqual(utf8) : Str.Equal(x, lit);
                return Value.Bool(eq != negate);
            }

            if (x.IsError)
            {
                return x;
            }

            var r = Ops.Equal(x, lit, ref f.Budget, 0);
            return negate && !r.IsError ? Value.Bool(!r.AsBool) : r;
        };
    }

    private static Value Order(in Value x, in Value y, int lo, int hi)
    {
        if (x.Kind == Kind.Int && y.Kind == Kind.Int)
        {
            var c = x.AsInt.CompareTo(y.AsInt);
            return Value.Bool(c >= lo && c <= hi);
        }

        if (x.Kind == Kind.Double && y.Kind == Kind.Double)
        {
            var dx = x.AsDouble;
            var dy = y.AsDouble;
            if (double.IsNaN(dx) || double.IsNaN(dy))
            {
                return Value.False;
            }

            var c = dx.CompareTo(dy);
            return Value.Bool(c >= lo && c <= hi);
        }

        var r = Ops.CompareRaw(x, y, out var err);
        if (err.IsError)
        {
            return err;
        }

        if (r is null)
        {
            return Value.False;
        }

        var s = Math.Sign(r.Value);
        return Value.Bool(s >= lo && s <= hi);
    }

    private (CelType, Eval) In(CallNode call, CelType[] types, Eval[] evals, Scope? scope)
    {
        if (!(types[1].IsDyn || types[1].Kind is TKind.List or TKind.Map))
        {
            TypeError(call, $"'in' needs a list or map on the right, not {types[1]}");
        }

        var l = evals[0];
        var r = evals[1];
        if (call.Args[1] is SelectNode { Operand: IdentNode { Name: "lists" }, Field: var listName } && _lists.TryGetValue(listName, out var lv)
            && lv.Obj is StringSetList set && types[1].Kind == TKind.List)
        {
            if (ArgsFieldOf(call.Args[0], scope) is { } argField)
            {
                var interned = string.Intern(listName);
                return (CelType.Bool, WithPred(ArgInList(argField, interned, set), ArgInListPred(argField, interned, set)));
            }

            // Named lists are constants: skip the generic list dispatch and go straight to the hashed set.
            return (CelType.Bool, (ref Frame f) =>
            {
                var x = l(ref f);
                return x.Kind == Kind.String ? Value.Bool(set.Contains(x)) : x.IsError ? x : Value.False;
            });
        }

        return (CelType.Bool, (ref Frame f) =>
        {
            var x = l(ref f);
            if (x.IsError)
            {
                return x;
            }

            var c = r(ref f);
            return c.Kind switch
            {
                Kind.List => ListOps.Contains(c, x, ref f.Budget),
                Kind.Map => Value.Bool(MapOps.TryGet(c, x, out _)),
                Kind.Error => c,
                _ => Ops.NoOverload,
            };
        });
    }

    /// <summary>
    /// <c>args.NAME in lists.LIST</c>, the most common shape in policies: with a decision's <see cref="ArgCache"/>,
    /// each (argument, list) membership is computed once per decision, keyed by the interned list name (names are
    /// unique within the one policy a decision uses).
    /// </summary>
    private static Eval ArgInList(string field, string listName, StringSetList set)
    {
        var name = string.Intern(field);
        var missing = Value.Error($"no such key: {field}");
        return (ref Frame f) =>
        {
            if (f.Cache is { } c && c.IndexOf(ref f, name) is >= 0 and var i)
            {
                ref var e = ref c.At(i);
                if (!e.Present)
                {
                    return missing;
                }

                if (ReferenceEquals(e.List0, listName))
                {
                    return Value.Bool(e.Member0);
                }

                if (ReferenceEquals(e.List1, listName))
                {
                    return Value.Bool(e.Member1);
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

                return Value.Bool(member);
            }

            if (!ArgsField(ref f, name, out var v))
            {
                return missing;
            }

            return Value.Bool(v.Kind == Kind.String && set.Contains(v));
        };
    }

    /// <summary>
    /// <c>domain(x) in lists.NAME</c> and <c>url_host(x) in lists.NAME</c> look the host up as a slice of the input,
    /// so the common case allocates nothing; unusual spellings take the normalising path.
    /// </summary>
    private (CelType, Eval)? FusedHostIn(CallNode inCall, Scope? scope)
    {
        if (inCall.Args[0] is not CallNode { Target: null, Function: "domain" or "url_host", Args.Count: 1 } call
            || inCall.Args[1] is not SelectNode { Operand: IdentNode { Name: "lists" } } listNode
            || scope?.Find("lists") != null || scope?.Find(call.Function) != null || !_lists.TryGetValue(listNode.Field, out var listValue))
        {
            return null;
        }

        var (argType, arg) = Compile(call.Args[0], scope);
        Want(call.Args[0], argType, TKind.String, $"the argument of {call.Function}()");
        var set = (StringSetList)listValue.Obj!;
        var isDomain = call.Function == "domain";
        return (CelType.Bool, (ref Frame f) =>
        {
            var v = arg(ref f);
            if (v.Kind != Kind.String)
            {
                return v.IsError ? v : Ops.NoOverload;
            }

            var chars = Str.Chars(v);
            if (NetHelpers.TryFastHost(chars, isDomain, out var host))
            {
                return Value.Bool(set.Lookup.Contains(host));
            }

            f.Budget -= chars.Length / 8;
            if (f.Budget < 0)
            {
                return Ops.CostExceeded;
            }

            var s = chars.ToString();
            return Value.Bool(set.Set.Contains(isDomain ? NetHelpers.Domain(s) : NetHelpers.UrlHost(s)));
        });
    }

    // ---------------- arithmetic and indexing ----------------

    private CelType Arithmetic(CallNode call, string fn, CelType a, CelType b)
    {
        if (a.IsDyn || b.IsDyn)
        {
            if (fn == "_-_" && (a.Kind == TKind.Timestamp && b.Kind == TKind.Timestamp))
            {
                return CelType.Duration;
            }

            // No cross-type arithmetic in CEL, so a known operand fixes the result type (except time arithmetic).
            var known = a.IsDyn ? b : a;
            return known.IsNumeric || known.Kind is TKind.String or TKind.Bytes or TKind.List ? known : CelType.Dyn;
        }

        var k = (a.Kind, b.Kind);
        CelType? r = fn switch
        {
            "_+_" => k switch
            {
                (TKind.Int, TKind.Int) or (TKind.Uint, TKind.Uint) or (TKind.Double, TKind.Double) or (TKind.String, TKind.String) or (TKind.Bytes, TKind.Bytes) => a,
                (TKind.List, TKind.List) => CelType.Join(a, b),
                (TKind.Timestamp, TKind.Duration) or (TKind.Duration, TKind.Timestamp) => CelType.Timestamp,
                (TKind.Duration, TKind.Duration) => CelType.Duration,
                _ => null,
            },
            "_-_" => k switch
            {
                (TKind.Int, TKind.Int) or (TKind.Uint, TKind.Uint) or (TKind.Double, TKind.Double) => a,
                (TKind.Timestamp, TKind.Timestamp) => CelType.Duration,
                (TKind.Timestamp, TKind.Duration) => CelType.Timestamp,
                (TKind.Duration, TKind.Duration) => CelType.Duration,
                _ => null,
            },
            "_%_" => k is (TKind.Int, TKind.Int) or (TKind.Uint, TKind.Uint) ? a : null,
            _ => k is (TKind.Int, TKind.Int) or (TKind.Uint, TKind.Uint) or (TKind.Double, TKind.Double) ? a : null,
        };
        if (r == null)
        {
            TypeError(call, $"no operator '{fn.Trim('_')}' for {a} and {b}", a.IsNumeric && b.IsNumeric ? "CEL does not mix int, uint and double in arithmetic; convert with double(x) or int(x)" : null);
            return CelType.Dyn;
        }

        return r;
    }

    private static Eval ArithmeticEval(string fn, Eval a, Eval b) => fn switch
    {
        "_+_" => (ref Frame f) =>
        {
            var x = a(ref f);
            var y = b(ref f);
            return Ops.Add(x, y, ref f.Budget);
        },
        "_-_" => Binary(a, b, static (in Value x, in Value y) => Ops.Subtract(x, y)),
        "_*_" => Binary(a, b, static (in Value x, in Value y) => Ops.Multiply(x, y)),
        "_/_" => Binary(a, b, static (in Value x, in Value y) => Ops.Divide(x, y)),
        _ => Binary(a, b, static (in Value x, in Value y) => Ops.Modulo(x, y)),
    };

    private (CelType, Eval) Index(CallNode call, CelType[] types, Eval[] evals)
    {
        var t = types[0];
        CelType result = CelType.Dyn;
        if (t.Kind == TKind.List)
        {
            result = t.Elem!;
            if (!(types[1].IsDyn || types[1].Kind is TKind.Int or TKind.Uint))
            {
                TypeError(call, $"list index must be int, not {types[1]}");
            }
        }
        else if (t.Kind is TKind.Map)
        {
            result = t.Value!;
        }
        else if (t.Kind == TKind.Struct)
        {
            result = CelType.Dyn;
        }
        else if (!t.IsDyn)
        {
            TypeError(call, $"cannot index {t}", "indexing needs a list or map");
        }

        return (result, Binary(evals[0], evals[1], static (in Value c, in Value i) =>
        {
            switch (c.Kind)
            {
                case Kind.List:
                    switch (i.Kind)
                    {
                        case Kind.Int: return ListOps.Get(c, i.AsInt);
                        case Kind.Uint: return i.AsUint > int.MaxValue ? Value.Error("index out of range") : ListOps.Get(c, (long)i.AsUint);
                        case Kind.Double:
                            var d = i.AsDouble;
                            return d == Math.Floor(d) && d >= 0 && d < int.MaxValue ? ListOps.Get(c, (long)d) : Value.Error("invalid list index");
                    }

                    return Value.Error("invalid list index type");
                case Kind.Map:
                    return MapOps.TryGet(c, i, out var v) ? v : Value.Error("no such key: " + Format.Display(i));
                case Kind.Message when i.Kind == Kind.String:
                    return MessageField(c, i.AsString);
            }

            return Ops.NoOverload;
        }));
    }

    // ---------------- macros ----------------

    private (CelType, Eval) Macro(CallNode call, Scope? scope)
    {
        var fn = call.Function;
        var arity = fn == "map" ? call.Args.Count is 2 or 3 : call.Args.Count == 2;
        if (!arity)
        {
            Report(call, $"{fn}() takes {(fn == "map" ? "2 or 3" : "2")} arguments", $"write list.{fn}(x, predicate)");
            return (CelType.Dyn, Fail("invalid macro"));
        }

        if (call.Args[0] is not IdentNode v)
        {
            Report(call.Args[0], $"the first argument of {fn}() must be a variable name", $"write list.{fn}(x, ...) and use x in the predicate");
            return (CelType.Dyn, Fail("invalid macro"));
        }

        var (rt, range) = Compile(call.Target!, scope);
        CelType elem;
        switch (rt.Kind)
        {
            case TKind.List: elem = rt.Elem!; break;
            case TKind.Map: elem = rt.Elem!; break;
            case TKind.Dyn: elem = CelType.Dyn; break;
            default:
                TypeError(call.Target!, $"{fn}() needs a list or map, not {rt}");
                elem = CelType.Dyn;
                break;
        }

        var slot = scope == null ? 0 : scope.Slot + 1;
        if (slot >= Slots.Count)
        {
            Report(call, $"macros nested more than {Slots.Count} deep");
            return (CelType.Dyn, Fail("too deep"));
        }

        SlotsUsed = Math.Max(SlotsUsed, slot + 1);
        var inner = new Scope(v.Name, slot, elem, scope);
        var (bt, body) = Compile(call.Args[1], inner);
        if (fn != "map" || call.Args.Count == 3)
        {
            Want(call.Args[1], bt, TKind.Bool, $"the predicate of {fn}()");
        }

        switch (fn)
        {
            case "all":
                return (CelType.Bool, (ref Frame f) =>
                {
                    var vis = new AllVisitor(body, false);
                    return Iterate(range(ref f), slot, ref f, ref vis);
                });
            case "exists":
                return (CelType.Bool, (ref Frame f) =>
                {
                    var vis = new AllVisitor(body, true);
                    return Iterate(range(ref f), slot, ref f, ref vis);
                });
            case "exists_one":
                return (CelType.Bool, (ref Frame f) =>
                {
                    var vis = new ExistsOneVisitor(body);
                    return Iterate(range(ref f), slot, ref f, ref vis);
                });
            case "filter":
                return (CelType.List(elem), (ref Frame f) =>
                {
                    var vis = new CollectVisitor(body, null);
                    return Iterate(range(ref f), slot, ref f, ref vis);
                });
            default:
                if (call.Args.Count == 3)
                {
                    var (tt, transform) = Compile(call.Args[2], inner);
                    return (CelType.List(tt), (ref Frame f) =>
                    {
                        var vis = new CollectVisitor(body, transform);
                        return Iterate(range(ref f), slot, ref f, ref vis);
                    });
                }

                return (CelType.List(bt), (ref Frame f) =>
                {
                    var vis = new CollectVisitor(null, body);
                    return Iterate(range(ref f), slot, ref f, ref vis);
                });
        }
    }

    private interface IVisitor
    {
        /// <summary>Handles one element (already stored in its slot); false stops the iteration.</summary>
        bool Step(ref Frame f, in Value element);

        Value Result();
    }

    private struct AllVisitor(Eval body, bool exists) : IVisitor
    {
        private Value _error;
        private bool _decided;

        public bool Step(ref Frame f, in Value element)
        {
            var r = body(ref f);
            if (r.Kind == Kind.Bool)
            {
                if (r.AsBool == exists)
                {
                    _decided = true;
                    return false;
                }

                return true;
            }

            if (_error.Kind != Kind.Error || _error.Obj == null)
            {
                _error = r.IsError ? r : Ops.NoOverload;
            }

            return true;
        }

        public readonly Value Result()
        {
            if (_decided)
            {
                return Value.Bool(exists);
            }

            return _error.Obj != null ? _error : Value.Bool(!exists);
        }
    }

    private struct ExistsOneVisitor(Eval body) : IVisitor
    {
        private int _count;
        private Value _error;

        public bool Step(ref Frame f, in Value element)
        {
            var r = body(ref f);
            if (r.Kind != Kind.Bool)
            {
                _error = r.IsError ? r : Ops.NoOverload;
                return false;
            }

            if (r.AsBool)
            {
                _count++;
            }

            return true;
        }

        public readonly Value Result() => _error.Obj != null ? _error : Value.Bool(_count == 1);
    }

    private struct CollectVisitor(Eval? predicate, Eval? transform) : IVisitor
    {
        private List<Value>? _items;
        private Value _error;

        public bool Step(ref Frame f, in Value element)
        {
            if (predicate != null)
            {
                var p = predicate(ref f);
                if (p.Kind != Kind.Bool)
                {
                    _error = p.IsError ? p : Ops.NoOverload;
                    return false;
                }

                if (!p.AsBool)
                {
                    return true;
                }
            }

            var v = transform != null ? transform(ref f) : element;
            if (v.IsError)
            {
                _error = v;
                return false;
            }

            (_items ??= []).Add(v);
            return true;
        }

        public readonly Value Result() => _error.Obj != null ? _error : Value.List(_items?.ToArray() ?? []);
    }

    private static Value Iterate<TV>(in Value range, int slot, ref Frame f, ref TV vis)
        where TV : struct, IVisitor
    {
        switch (range.Kind)
        {
            case Kind.Error:
                return range;
            case Kind.List:
                if (range.IsJson)
                {
                    foreach (var e in range.Json.EnumerateArray())
                    {
                        if (--f.Budget < 0)
                        {
                            return Ops.CostExceeded;
                        }

                        var v = Value.FromJson(e);
                        f.Locals[slot] = v;
                        if (!vis.Step(ref f, v))
                        {
                            break;
                        }
                    }

                    return vis.Result();
                }

                switch (range.Obj)
                {
                    case Value[] arr:
                        foreach (var v in arr)
                        {
                            if (--f.Budget < 0)
                            {
                                return Ops.CostExceeded;
                            }

                            f.Locals[slot] = v;
                            if (!vis.Step(ref f, v))
                            {
                                break;
                            }
                        }

                        return vis.Result();
                    case StringSetList s:
                        return IterateStrings(s.Items, slot, ref f, ref vis);
                    case IReadOnlyList<string> l:
                        return IterateStrings(l, slot, ref f, ref vis);
                    case IReadOnlyCollection<string> c:
                        return IterateStrings(c.ToArray(), slot, ref f, ref vis);
                }

                return vis.Result();
            case Kind.Map:
                foreach (var k in MapOps.Keys(range))
                {
                    if (--f.Budget < 0)
                    {
                        return Ops.CostExceeded;
                    }

                    f.Locals[slot] = k;
                    if (!vis.Step(ref f, k))
                    {
                        break;
                    }
                }

                return vis.Result();
        }

        return Ops.NoOverload;
    }

    private static Value IterateStrings<TV>(IReadOnlyList<string> items, int slot, ref Frame f, ref TV vis)
        where TV : struct, IVisitor
    {
        for (var i = 0; i < items.Count; i++)
        {
            if (--f.Budget < 0)
            {
                return Ops.CostExceeded;
            }

            var v = Value.String(items[i]);
            f.Locals[slot] = v;
            if (!vis.Step(ref f, v))
            {
                break;
            }
        }

        return vis.Result();
    }

    // ---------------- functions ----------------

    private (CelType, Eval)? Function(CallNode call, string fn, bool member, Node[] nodes, CelType[] types, Eval[] evals)
    {
        var n = nodes.Length;
        switch (fn)
        {
            case "size" when n == 1:
                if (!(types[0].IsDyn || types[0].Kind is TKind.String or TKind.Bytes or TKind.List or TKind.Map or TKind.Struct))
                {
                    TypeError(call, $"size() needs a string, bytes, list or map, not {types[0]}");
                }

                var sizeOf = evals[0];
                if (ArgField(sizeOf) is { } sizeField)
                {
                    return (CelType.Int, SizeOfArg(sizeField, sizeOf));
                }

                return (CelType.Int, (ref Frame f) => Ops.Size(sizeOf(ref f)));
            case "startsWith" or "endsWith" or "contains" when member && n == 2:
                WantString(nodes, types);
                var test = StringPredicate(fn, evals[0], evals[1], nodes[1], ArgField(evals[0]));
                if (nodes[1] is LiteralNode { Value.Kind: Kind.String } needle && ArgField(evals[0]) is { } testField)
                {
                    var text = needle.Value.AsString;
                    WithPred(test, ArgStringTestPred(testField, text, Encoding.UTF8.GetBytes(text), fn switch { "startsWith" => 0, "endsWith" => 1, _ => 2 }));
                }

                return (CelType.Bool, test);
            case "matches" when n == 2:
                WantString(nodes, types);
                return (CelType.Bool, Matches(call, evals[0], nodes[1]));
            case "lowerAscii" or "upperAscii" or "trim" when member && n == 1:
                WantString(nodes, types);
                return (CelType.String, StringTransform(fn, evals[0]));
            case "split" when member && n is 2 or 3:
                WantString(nodes[..2], types[..2]);
                return (CelType.StringList, Split(evals));
            case "join" when member && n is 1 or 2:
                return (CelType.String, Join(evals));
            case "int" or "uint" or "double" or "string" or "bytes" or "bool" or "dyn" or "type" or "timestamp" or "duration" when !member && n == 1:
                return Conversion(fn, types[0], evals[0]);
            case "getFullYear" or "getMonth" or "getDate" or "getDayOfMonth" or "getDayOfWeek" or "getDayOfYear"
                or "getHours" or "getMinutes" or "getSeconds" or "getMilliseconds" when member && n is 1 or 2:
                return (CelType.Int, TimeGetter(fn, evals));
            case "domain" or "url_host" or "canonical_path" when !member && n == 1:
                Want(nodes[0], types[0], TKind.String, $"the argument of {fn}()");
                return (CelType.String, HelperString(fn, evals[0]));
            case "is_private_address" or "is_metadata_address" when !member && n == 1:
                Want(nodes[0], types[0], TKind.String, $"the argument of {fn}()");
                return (CelType.Bool, HelperBool(fn, evals[0]));
            case "path_within" when !member && n == 2:
                WantString(nodes, types);
                return (CelType.Bool, PathWithin(evals[0], evals[1]));
            case "glob" when !member && n == 2:
                WantString(nodes, types);
                return (CelType.Bool, Glob(evals[0], nodes[1]));
        }

        if (Array.IndexOf(KnownFunctions, fn) >= 0)
        {
            if (_check)
            {
                var sig = member ? $"{types[0]}.{fn}({string.Join(", ", types.Skip(1))})" : $"{fn}({string.Join(", ", types)})";
                Report(call, $"no matching overload for {sig}", "see docs/conditions.md for the signatures");
            }

            return (CelType.Dyn, Fail("no matching overload"));
        }

        return null;
    }

    private void WantString(Node[] nodes, CelType[] types)
    {
        for (var i = 0; i < nodes.Length; i++)
        {
            Want(nodes[i], types[i], TKind.String, i == 0 ? "the receiver" : "the argument");
        }
    }

    private static Eval StringPredicate(string fn, Eval recv, Eval arg, Node argNode, string? argField)
    {
        if (argNode is LiteralNode { Value.Kind: Kind.String } lit)
        {
            var needle = lit.Value.AsString;
            var utf8 = Encoding.UTF8.GetBytes(needle);
            var m = fn switch { "startsWith" => 0, "endsWith" => 1, _ => 2 };
            if (argField is not null)
            {
                // args.NAME.endsWith('...'): one step from the argument to the answer.
                var name = string.Intern(argField);
                var missing = Value.Error($"no such key: {argField}");
                return (ref Frame f) =>
                {
                    if (f.Cache is { } c && c.IndexOf(ref f, name) is >= 0 and var i)
                    {
                        ref var e = ref c.At(i);
                        return e.Present ? StrTestLiteral(e.Value, needle, utf8, m) : missing;
                    }

                    return ArgsField(ref f, name, out var v) ? StrTestLiteral(v, needle, utf8, m) : missing;
                };
            }

            return fn switch
            {
                "startsWith" => (ref Frame f) => StrTestLiteral(recv(ref f), needle, utf8, 0),
                "endsWith" => (ref Frame f) => StrTestLiteral(recv(ref f), needle, utf8, 1),
                _ => (ref Frame f) => StrTestLiteral(recv(ref f), needle, utf8, 2),
            };
        }

        var mode = fn switch { "startsWith" => 0, "endsWith" => 1, _ => 2 };
        return (ref Frame f) =>
        {
            var a = recv(ref f);
            if (a.IsError)
            {
                return a;
            }

            var b = arg(ref f);
            if (b.IsError)
            {
                return b;
            }

            return b.Kind == Kind.String ? StrTest(a, b.AsString, mode) : Ops.NoOverload;
        };
    }

    /// <summary><c>size(args.NAME)</c>: a JSON array's length is read without converting the argument first.</summary>
    private static Eval SizeOfArg(string field, Eval reader)
    {
        var name = string.Intern(field);
        return (ref Frame f) =>
        {
            if (f.Cache is null && f.ArgsDictionary is { } d && d.TryGetValue(name, out var je) && je.ValueKind == System.Text.Json.JsonValueKind.Array)
            {
                return Value.Int(je.GetArrayLength());
            }

            return Ops.Size(reader(ref f));
        };
    }

    /// <summary>Literal needles also compare as UTF-8 against unescaped JSON strings, skipping the decode.</summary>
    private static Value StrTestLiteral(in Value a, string needle, byte[] utf8, int mode)
    {
        if (a.Kind == Kind.String && a.IsJson && Str.TryRawUtf8(a, out var raw))
        {
            return mode switch
            {
                0 => Value.Bool(raw.StartsWith(utf8)),
                1 => Value.Bool(raw.EndsWith(utf8)),
                _ => Value.Bool(raw.IndexOf(utf8) >= 0),
            };
        }

        return StrTest(a, needle, mode);
    }

    private static Value StrTest(in Value a, string needle, int mode)
    {
        if (a.Kind != Kind.String)
        {
            return a.IsError ? a : Ops.NoOverload;
        }

        var s = Str.Chars(a);
        return mode switch
        {
            0 => Value.Bool(s.StartsWith(needle, StringComparison.Ordinal)),
            1 => Value.Bool(s.EndsWith(needle, StringComparison.Ordinal)),
            _ => Value.Bool(s.Contains(needle, StringComparison.Ordinal)),
        };
    }

    private (CelType, Eval) MatchesInvalid(Node n, string message, string hint)
    {
        Report(n, message, hint);
        return (CelType.Bool, Fail(message));
    }

    private Eval Matches(CallNode call, Eval recv, Node pattern)
    {
        if (pattern is not LiteralNode { Value.Kind: Kind.String } lit)
        {
            return MatchesInvalid(pattern, "matches() needs a literal pattern", "patterns are compiled once at load; write the pattern as a string literal").Item2;
        }

        var p = lit.Value.AsString;
        if (p.Length > _env.MaxPatternLength)
        {
            return MatchesInvalid(pattern, $"pattern longer than {_env.MaxPatternLength} characters", "shorten the pattern").Item2;
        }

        Regex re;
        try
        {
            re = BuildRegex(p);
        }
        catch (ArgumentException e)
        {
            return MatchesInvalid(pattern, "invalid pattern: " + e.Message, "patterns use RE2-style syntax without backreferences or lookaround").Item2;
        }
        catch (NotSupportedException e)
        {
            return MatchesInvalid(pattern, "unsupported pattern: " + e.Message, "backreferences, lookaround and atomic groups are not supported").Item2;
        }

        return (ref Frame f) =>
        {
            var a = recv(ref f);
            if (a.Kind != Kind.String)
            {
                return a.IsError ? a : Ops.NoOverload;
            }

            var s = Str.Chars(a);
            f.Budget -= s.Length / 16;
            return f.Budget < 0 ? Ops.CostExceeded : Value.Bool(re.IsMatch(s));
        };
    }

    private static Eval StringTransform(string fn, Eval recv) => (ref Frame f) =>
    {
        var a = recv(ref f);
        if (a.Kind != Kind.String)
        {
            return a.IsError ? a : Ops.NoOverload;
        }

        var s = a.AsString;
        f.Budget -= s.Length / 8;
        if (f.Budget < 0)
        {
            return Ops.CostExceeded;
        }

        return fn switch
        {
            "lowerAscii" => Value.String(AsciiCase(s, upper: false)),
            "upperAscii" => Value.String(AsciiCase(s, upper: true)),
            _ => Value.String(s.Trim()),
        };
    };

    private static string AsciiCase(string s, bool upper) => string.Create(s.Length, (s, upper), static (span, st) =>
    {
        for (var i = 0; i < span.Length; i++)
        {
            var c = st.s[i];
            span[i] = st.upper ? (c is >= 'a' and <= 'z' ? (char)(c - 32) : c) : (c is >= 'A' and <= 'Z' ? (char)(c + 32) : c);
        }
    });

    private static Eval Split(Eval[] evals) => (ref Frame f) =>
    {
        var a = evals[0](ref f);
        var sep = evals[1](ref f);
        if (a.IsError)
        {
            return a;
        }

        if (sep.IsError)
        {
            return sep;
        }

        if (a.Kind != Kind.String || sep.Kind != Kind.String)
        {
            return Ops.NoOverload;
        }

        var limit = -1L;
        if (evals.Length == 3)
        {
            var n = evals[2](ref f);
            if (n.Kind != Kind.Int)
            {
                return n.IsError ? n : Ops.NoOverload;
            }

            limit = n.AsInt;
        }

        var s = a.AsString;
        f.Budget -= s.Length / 8;
        if (f.Budget < 0)
        {
            return Ops.CostExceeded;
        }

        if (limit == 0)
        {
            return Value.List(Array.Empty<Value>());
        }

        var separator = sep.AsString;
        string[] parts = separator.Length == 0
            ? s.EnumerateRunes().Select(r => r.ToString()).ToArray()
            : (limit > 0 ? s.Split(separator, (int)Math.Min(limit, int.MaxValue)) : s.Split(separator));
        if (separator.Length == 0 && limit > 0 && parts.Length > limit)
        {
            parts = [.. parts.Take((int)limit - 1), string.Concat(parts.Skip((int)limit - 1))];
        }

        return Value.List(parts.Select(Value.String).ToArray());
    };

    private static Eval Join(Eval[] evals) => (ref Frame f) =>
    {
        var l = evals[0](ref f);
        if (l.Kind != Kind.List)
        {
            return l.IsError ? l : Ops.NoOverload;
        }

        var sep = "";
        if (evals.Length == 2)
        {
            var s = evals[1](ref f);
            if (s.Kind != Kind.String)
            {
                return s.IsError ? s : Ops.NoOverload;
            }

            sep = s.AsString;
        }

        var items = ListOps.ToArray(l);
        f.Budget -= items.Length;
        if (f.Budget < 0)
        {
            return Ops.CostExceeded;
        }

        var sb = new StringBuilder();
        for (var i = 0; i < items.Length; i++)
        {
            if (items[i].Kind != Kind.String)
            {
                return Ops.NoOverload;
            }

            if (i > 0)
            {
                sb.Append(sep);
            }

            sb.Append(items[i].AsString);
        }

        return Value.String(sb.ToString());
    };

    private static (CelType, Eval) Conversion(string fn, CelType t, Eval a) => fn switch
    {
        "int" => (CelType.Int, Unary(a, static (in Value v) => Ops.ToInt(v))),
        "uint" => (CelType.Uint, Unary(a, static (in Value v) => Ops.ToUint(v))),
        "double" => (CelType.Double, Unary(a, static (in Value v) => Ops.ToDouble(v))),
        "string" => (CelType.String, Unary(a, static (in Value v) => Ops.ToStringValue(v))),
        "bytes" => (CelType.Bytes, Unary(a, static (in Value v) => Ops.ToBytes(v))),
        "bool" => (CelType.Bool, Unary(a, static (in Value v) => Ops.ToBool(v))),
        "timestamp" => (CelType.Timestamp, Unary(a, static (in Value v) => Ops.ToTimestamp(v))),
        "duration" => (CelType.Duration, Unary(a, static (in Value v) => Ops.ToDuration(v))),
        "type" => (CelType.TypeT, Unary(a, static (in Value v) => v.IsError ? v : Value.TypeOf(v.TypeName))),
        _ => (CelType.Dyn, a),
    };

    private static Eval TimeGetter(string fn, Eval[] evals) => (ref Frame f) =>
    {
        var v = evals[0](ref f);
        if (v.IsError)
        {
            return v;
        }

        if (v.Kind == Kind.Duration)
        {
            if (evals.Length != 1)
            {
                return Ops.NoOverload;
            }

            var ns = v.Bits;
            return fn switch
            {
                "getHours" => Value.Int(ns / 3_600_000_000_000),
                "getMinutes" => Value.Int(ns / 60_000_000_000),
                "getSeconds" => Value.Int(ns / 1_000_000_000),
                "getMilliseconds" => Value.Int(ns / 1_000_000 % 1000),
                _ => Ops.NoOverload,
            };
        }

        if (v.Kind != Kind.Timestamp)
        {
            return Ops.NoOverload;
        }

        var dt = new DateTime(v.Bits, DateTimeKind.Utc);
        if (evals.Length == 2)
        {
            var tz = evals[1](ref f);
            if (tz.Kind != Kind.String)
            {
                return tz.IsError ? tz : Ops.NoOverload;
            }

            if (!TryShift(dt, tz.AsString, out dt))
            {
                return Value.Error("unknown time zone: " + tz.AsString);
            }
        }

        return fn switch
        {
            "getFullYear" => Value.Int(dt.Year),
            "getMonth" => Value.Int(dt.Month - 1),
            "getDate" => Value.Int(dt.Day),
            "getDayOfMonth" => Value.Int(dt.Day - 1),
            "getDayOfWeek" => Value.Int((int)dt.DayOfWeek),
            "getDayOfYear" => Value.Int(dt.DayOfYear - 1),
            "getHours" => Value.Int(dt.Hour),
            "getMinutes" => Value.Int(dt.Minute),
            "getSeconds" => Value.Int(dt.Second),
            _ => Value.Int(dt.Millisecond),
        };
    };

    private static bool TryShift(DateTime utc, string tz, out DateTime local)
    {
        local = utc;
        if (tz.Length > 0 && (tz[0] is '+' or '-' || char.IsAsciiDigit(tz[0])))
        {
            var sign = tz[0] == '-' ? -1 : 1;
            var body = tz[0] is '+' or '-' ? tz[1..] : tz;
            if (TimeSpan.TryParseExact(body, ["hh\\:mm", "h\\:mm"], CultureInfo.InvariantCulture, out var off))
            {
                local = utc + (sign * off);
                return true;
            }

            return false;
        }

        try
        {
            local = TimeZoneInfo.ConvertTimeFromUtc(utc, TimeZoneInfo.FindSystemTimeZoneById(tz));
            return true;
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            return false;
        }
    }

    private static Eval HelperString(string fn, Eval a) => (ref Frame f) =>
    {
        var v = a(ref f);
        if (v.Kind != Kind.String)
        {
            return v.IsError ? v : Ops.NoOverload;
        }

        var s = v.AsString;
        f.Budget -= s.Length / 8;
        if (f.Budget < 0)
        {
            return Ops.CostExceeded;
        }

        return fn switch
        {
            "domain" => Value.String(NetHelpers.Domain(s)),
            "url_host" => Value.String(NetHelpers.UrlHost(s)),
            _ => Value.String(NetHelpers.CanonicalPath(s)),
        };
    };

    private static Eval HelperBool(string fn, Eval a) => (ref Frame f) =>
    {
        var v = a(ref f);
        if (v.Kind != Kind.String)
        {
            return v.IsError ? v : Ops.NoOverload;
        }

        var s = v.AsString;
        f.Budget -= s.Length / 8;
        if (f.Budget < 0)
        {
            return Ops.CostExceeded;
        }

        return Value.Bool(fn == "is_private_address" ? NetHelpers.IsPrivateAddress(s) : NetHelpers.IsMetadataAddress(s));
    };

    private static Eval PathWithin(Eval a, Eval b) => Binary(a, b, static (in Value p, in Value root) =>
        p.Kind == Kind.String && root.Kind == Kind.String ? Value.Bool(NetHelpers.PathWithin(p.AsString, root.AsString)) : Ops.NoOverload);

    private Eval Glob(Eval a, Node pattern)
    {
        if (pattern is not LiteralNode { Value.Kind: Kind.String } lit)
        {
            return MatchesInvalid(pattern, "glob() needs a literal pattern", "patterns are compiled once at load; write the pattern as a string literal").Item2;
        }

        var p = lit.Value.AsString;
        if (p.Length > _env.MaxPatternLength)
        {
            return MatchesInvalid(pattern, $"pattern longer than {_env.MaxPatternLength} characters", "shorten the pattern").Item2;
        }

        var re = BuildRegex(NetHelpers.GlobToRegex(p));
        return (ref Frame f) =>
        {
            var v = a(ref f);
            if (v.Kind != Kind.String)
            {
                return v.IsError ? v : Ops.NoOverload;
            }

            var s = Str.Chars(v);
            f.Budget -= s.Length / 16;
            return f.Budget < 0 ? Ops.CostExceeded : Value.Bool(re.IsMatch(s));
        };
    }
}
