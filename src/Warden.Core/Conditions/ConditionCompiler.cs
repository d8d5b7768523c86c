using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Warden.Core.Conditions;

/// <summary>Compiles CEL-subset conditions into delegates. Compile once at load; evaluate per call.</summary>
public sealed class ConditionCompiler
{
    private readonly ConditionEnvironment _env;
    private readonly Dictionary<string, Value> _lists;

    /// <summary>Creates a compiler for the given environment (named lists, limits).</summary>
    public ConditionCompiler(ConditionEnvironment env)
    {
        _env = env;
        _lists = new Dictionary<string, Value>(StringComparer.Ordinal);
        foreach (var (name, items) in env.Lists)
        {
            _lists[name] = Value.List(new StringSetList(items));
        }
    }

    /// <summary>Parses and checks <paramref name="source"/>. Never throws on bad input: problems are returned as diagnostics.</summary>
    /// <param name="source">A CEL condition such as <c>size(args.ids) &gt; 5</c>.</param>
    public CompileResult Compile(string source) => Compile(source, check: true, requireBool: true);

    internal CompileResult Compile(string source, bool check, bool requireBool)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Length > _env.MaxSourceLength)
        {
            return Fail(new ConditionDiagnostic(1, 1, $"condition is longer than {_env.MaxSourceLength} characters", "split it into several rules"));
        }

        Node root;
        try
        {
            root = new Parser(source, _env.MaxNesting).ParseAll();
        }
        catch (SyntaxError e)
        {
            var (line, col) = LineCol(source, e.Pos);
            return Fail(new ConditionDiagnostic(line, col, e.Message, e.Hint));
        }

        var emitter = new Emitter(source, _env, _lists, check);
        (CelType type, Eval eval) result;
        try
        {
            result = emitter.Compile(root, null);
        }
        catch (InsufficientExecutionStackException)
        {
            return Fail(new ConditionDiagnostic(1, 1, "condition is nested too deeply", "simplify the condition"));
        }

        if (requireBool && emitter.Diagnostics.Count == 0 && check && result.type.Kind is not (TKind.Bool or TKind.Dyn))
        {
            emitter.Report(root, $"a condition must be a bool, but this is {result.type}", "compare the value, e.g. size(x) > 0");
        }

        if (emitter.Diagnostics.Count > 0)
        {
            return new CompileResult(null, emitter.Diagnostics.OrderBy(d => d.Line).ThenBy(d => d.Column).ToList());
        }

        return new CompileResult(new CompiledCondition(source, result.eval, emitter.PredOf(result.eval), _env.MaxCost, emitter.SlotsUsed), []);
    }

    private static CompileResult Fail(ConditionDiagnostic d) => new(null, [d]);

    internal static (int Line, int Column) LineCol(string source, int pos)
    {
        var line = 1;
        var col = 1;
        for (var i = 0; i < pos && i < source.Length; i++)
        {
            if (source[i] == '\n')
            {
                line++;
                col = 1;
            }
            else
            {
                col++;
            }
        }

        return (line, col);
    }
}

/// <summary>A macro iteration variable and the slot that holds it.</summary>
internal sealed record Scope(string Name, int Slot, CelType Type, Scope? Parent)
{
    public Scope? Find(string name)
    {
        for (var s = this; s != null; s = s.Parent)
        {
            if (s.Name == name)
            {
                return s;
            }
        }

        return null;
    }
}

/// <summary>Checks types and emits delegates in one pass over the syntax tree.</summary>
internal sealed partial class Emitter
{
    private static readonly string[] TypeNames = ["int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"];
    private static readonly string[] Macros = ["all", "exists", "exists_one", "map", "filter"];

    private readonly string _source;
    private readonly ConditionEnvironment _env;
    private readonly Dictionary<string, Value> _lists;
    private readonly bool _check;
    private readonly CelType _contextType;
    private readonly CelType _listsType;

    public Emitter(string source, ConditionEnvironment env, Dictionary<string, Value> lists, bool check)
    {
        _source = source;
        _env = env;
        _lists = lists;
        _check = check;
        _contextType = ContextSchema.Type;
        _listsType = CelType.Struct("lists", lists.Keys.ToDictionary(k => k, _ => CelType.StringList));
    }

    public List<ConditionDiagnostic> Diagnostics { get; } = [];

    // Which compiled delegates read args.NAME, so operators over them can read the argument directly.
    private readonly Dictionary<Eval, string> _argReaders = new(ReferenceEqualityComparer.Instance);

    /// <summary>The field when <paramref name="e"/> is a compiled <c>args.NAME</c> read.</summary>
    private string? ArgField(Eval e) => _argReaders.TryGetValue(e, out var f) ? f : null;

    /// <summary>Number of macro variable slots the compiled condition needs.</summary>
    public int SlotsUsed { get; private set; }

    public void Report(Node n, string message, string? hint = null)
    {
        var (line, col) = ConditionCompiler.LineCol(_source, n.Pos);
        Diagnostics.Add(new ConditionDiagnostic(line, col, message, hint));
    }

    /// <summary>A type error: reported when checking, otherwise left to surface at run time.</summary>
    private void TypeError(Node n, string message, string? hint = null)
    {
        if (_check)
        {
            Report(n, message, hint);
        }
    }

    private static Eval Const(Value v) => (ref Frame _) => v;

    private static Eval Fail(string message)
    {
        var e = Value.Error(message);
        return (ref Frame _) => e;
    }

    public (CelType Type, Eval Eval) Compile(Node n, Scope? scope)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        switch (n)
        {
            case LiteralNode lit:
                return (TypeOfValue(lit.Value), Const(lit.Value));
            case IdentNode id:
                return Ident(id, scope);
            case SelectNode sel:
                return Select(sel, scope);
            case ListNode list:
                return ListLiteral(list, scope);
            case MapNode map:
                return MapLiteral(map, scope);
            case MessageNode msg:
                return MessageLiteral(msg, scope);
            case CallNode call:
                return Call(call, scope);
        }

        Report(n, "unsupported expression");
        return (CelType.Dyn, Fail("unsupported"));
    }

    private static CelType TypeOfValue(in Value v) => v.Kind switch
    {
        Kind.Null => CelType.Null,
        Kind.Bool => CelType.Bool,
        Kind.Int => CelType.Int,
        Kind.Uint => CelType.Uint,
        Kind.Double => CelType.Double,
        Kind.String => CelType.String,
        Kind.Bytes => CelType.Bytes,
        Kind.Timestamp => CelType.Timestamp,
        Kind.Duration => CelType.Duration,
        Kind.Type => CelType.TypeT,
        Kind.List => CelType.DynList,
        Kind.Map => CelType.DynMap,
        _ => CelType.Dyn,
    };

    // ---------------- identifiers and selection ----------------

    private (CelType, Eval) Ident(IdentNode id, Scope? scope)
    {
        var local = scope?.Find(id.Name);
        if (local != null)
        {
            var slot = local.Slot;
            return (local.Type, (ref Frame f) => f.Locals[slot]);
        }

        switch (id.Name)
        {
            case "args":
                return (CelType.Map(CelType.String, CelType.Dyn), static (ref Frame f) => ArgsValue(ref f));
            case "context":
                return (_contextType, ContextSchema.Accessor("context"));
            case "lists":
            {
                var m = new MapValue(_lists.Count);
                foreach (var (k, v) in _lists)
                {
                    m.TryAdd(Value.String(k), v);
                }

                return (_listsType, Const(Value.Map(m)));
            }
        }

        if (_env.Variables.TryGetValue(id.Name, out var varType))
        {
            var name = id.Name;
            return (varType, (ref Frame f) => f.Bindings != null && f.Bindings.TryGetValue(name, out var v) ? v : Value.Error($"no value bound for '{name}'"));
        }

        if (Array.IndexOf(TypeNames, id.Name) >= 0)
        {
            return (CelType.TypeT, Const(Value.TypeOf(id.Name)));
        }

        if (_check)
        {
            Report(id, $"unknown variable '{id.Name}'", Suggest(id.Name, ["args", "context", "lists", .. _env.Variables.Keys]) ?? "conditions can read args, context and lists");
            return (CelType.Dyn, Fail("unknown variable"));
        }

        var unbound = id.Name;
        return (CelType.Dyn, (ref Frame f) => f.Bindings != null && f.Bindings.TryGetValue(unbound, out var v) ? v : Value.Error($"undeclared reference to '{unbound}'"));
    }

    private static readonly Dictionary<string, JsonElement> EmptyArgs = new();

    internal static Value ArgsValue(ref Frame f)
    {
        if (f.ArgsDictionary != null)
        {
            return Value.Map(f.ArgsDictionary);
        }

        if (f.ArgsElement.ValueKind == JsonValueKind.Object)
        {
            return Value.FromJson(f.ArgsElement);
        }

        return Value.Map(EmptyArgs);
    }

    internal static bool ArgsField(ref Frame f, string field, out Value v)
    {
        if (f.ArgsDictionary != null)
        {
            if (f.ArgsDictionary.TryGetValue(field, out var je))
            {
                v = Value.FromJson(je);
                return true;
            }
        }
        else if (f.ArgsElement.ValueKind == JsonValueKind.Object && f.ArgsElement.TryGetProperty(field, out var p))
        {
            v = Value.FromJson(p);
            return true;
        }

        v = default;
        return false;
    }

    private static bool ArgsHas(ref Frame f, string field) =>
        f.ArgsDictionary != null ? f.ArgsDictionary.ContainsKey(field)
        : f.ArgsElement.ValueKind == JsonValueKind.Object && f.ArgsElement.TryGetProperty(field, out _);

    /// <summary><c>args.NAME</c>: through the decision's <see cref="ArgCache"/> when there is one.</summary>
    private static Eval ArgsReader(string field)
    {
        var name = string.Intern(field);
        var missing = Value.Error($"no such key: {field}");
        return (ref Frame f) =>
        {
            if (f.Cache is { } c && c.IndexOf(ref f, name) is >= 0 and var i)
            {
                ref var e = ref c.At(i);
                return e.Present ? e.Value : missing;
            }

            return ArgsField(ref f, name, out var v) ? v : missing;
        };
    }

    /// <summary>The field name when <paramref name="n"/> is <c>args.NAME</c> (not shadowed by a macro variable).</summary>
    private string? ArgsFieldOf(Node n, Scope? scope) => n is SelectNode sel && IsGlobal(sel.Operand, "args", scope) ? sel.Field : null;

    private bool IsGlobal(Node n, string name, Scope? scope) => n is IdentNode id && id.Name == name && scope?.Find(name) == null;

    private (CelType, Eval) Select(SelectNode sel, Scope? scope)
    {
        var field = sel.Field;
        if (IsGlobal(sel.Operand, "args", scope))
        {
            var reader = ArgsReader(field);
            _argReaders[reader] = field;
            return (CelType.Dyn, reader);
        }

        var (t, operand) = Compile(sel.Operand, scope);
        if (t.Kind == TKind.Struct)
        {
            if (!t.Fields!.TryGetValue(field, out var ft) && t.Name == "lists")
            {
                Report(sel, $"unknown list '{field}'", Suggest(field, t.Fields.Keys) ?? (t.Fields.Count == 0 ? "no lists are configured" : "known lists: " + string.Join(", ", t.Fields.Keys.Order(StringComparer.Ordinal))));
                return (CelType.Dyn, Fail("unknown list"));
            }

            if (ft == null)
            {
                Report(sel, $"{t.Name} has no field '{field}'", Suggest(field, t.Fields.Keys) ?? ("fields: " + string.Join(", ", t.Fields.Keys.Order(StringComparer.Ordinal))));
                return (CelType.Dyn, Fail("unknown field"));
            }

            if (t.Name == "lists")
            {
                return (ft, Const(_lists[field]));
            }

            return (ft, ContextSchema.Accessor(t.Name + "." + field));
        }

        if (t.Kind is not (TKind.Dyn or TKind.Map or TKind.Message))
        {
            TypeError(sel, $"cannot select field '{field}' from {t}", "field selection needs a map or JSON object");
        }

        var resultType = t.Kind == TKind.Map ? t.Value! : CelType.Dyn;
        var noKey = Value.Error($"no such key: {field}");
        return (resultType, (ref Frame f) =>
        {
            var o = operand(ref f);
            switch (o.Kind)
            {
                case Kind.Map:
                    return MapOps.TryGetField(o, field, out var v) ? v : noKey;
                case Kind.Message:
                    return MessageField(o, field);
                case Kind.Error:
                    return o;
                default:
                    return Value.Error($"no such field '{field}' on {o.TypeName}");
            }
        });
    }

    private static Value MessageField(in Value o, string field)
    {
        var m = (MessageValue)o.Obj!;
        if (m.Fields.TryGetValue(field, out var v))
        {
            return v;
        }

        return m.Defaults(field) ?? Value.Error($"no such field '{field}'");
    }

    private (CelType, Eval) Has(CallNode call, Scope? scope)
    {
        if (call.Target != null || call.Args.Count != 1 || call.Args[0] is not SelectNode sel)
        {
            Report(call, "has() takes one field selection", "write has(args.field)");
            return (CelType.Bool, Fail("invalid has()"));
        }

        var field = sel.Field;
        if (IsGlobal(sel.Operand, "args", scope))
        {
            var name = string.Intern(field);
            return (CelType.Bool, WithPred((ref Frame f) =>
            {
                if (f.Cache is { } c && c.IndexOf(ref f, name) is >= 0 and var i)
                {
                    return Value.Bool(c.At(i).Present);
                }

                return Value.Bool(ArgsHas(ref f, name));
            }, ArgsHasPred(name)));
        }

        var (t, operand) = Compile(sel.Operand, scope);
        if (t.Kind == TKind.Struct)
        {
            if (!t.Fields!.ContainsKey(field))
            {
                Report(sel, $"{t.Name} has no field '{field}'", "fields: " + string.Join(", ", t.Fields.Keys.Order(StringComparer.Ordinal)));
            }

            return (CelType.Bool, Const(Value.True));
        }

        if (t.Kind is not (TKind.Dyn or TKind.Map or TKind.Message))
        {
            TypeError(sel, $"has() cannot test a field of {t}", "has() needs a map or JSON object");
        }

        return (CelType.Bool, (ref Frame f) =>
        {
            var o = operand(ref f);
            return o.Kind switch
            {
                Kind.Map => Value.Bool(MapOps.TryGetField(o, field, out _)),
                Kind.Message => Value.Bool(((MessageValue)o.Obj!).Fields.ContainsKey(field)),
                Kind.Error => o,
                _ => Value.Error($"has() cannot test a field of {o.TypeName}"),
            };
        });
    }

    // ---------------- literals ----------------

    private (CelType, Eval) ListLiteral(ListNode list, Scope? scope)
    {
        var items = list.Items.Select(i => Compile(i, scope)).ToArray();
        var elem = items.Length == 0 ? CelType.Dyn : items.Select(i => i.Item1).Aggregate(CelType.Join);
        var evals = items.Select(i => i.Item2).ToArray();
        if (evals.Length == 0)
        {
            return (CelType.DynList, Const(Value.List(Array.Empty<Value>())));
        }

        return (CelType.List(elem), (ref Frame f) =>
        {
            var arr = new Value[evals.Length];
            for (var i = 0; i < evals.Length; i++)
            {
                var v = evals[i](ref f);
                if (v.IsError)
                {
                    return v;
                }

                arr[i] = v;
            }

            return Value.List(arr);
        });
    }

    private (CelType, Eval) MapLiteral(MapNode map, Scope? scope)
    {
        var keys = new Eval[map.Entries.Count];
        var vals = new Eval[map.Entries.Count];
        CelType? kt = null;
        CelType? vt = null;
        for (var i = 0; i < keys.Length; i++)
        {
            var (k, ke) = Compile(map.Entries[i].Key, scope);
            var (v, ve) = Compile(map.Entries[i].Value, scope);
            if (k.Kind is not (TKind.Dyn or TKind.String or TKind.Int or TKind.Uint or TKind.Bool))
            {
                TypeError(map.Entries[i].Key, $"map keys must be string, int, uint or bool, not {k}");
            }

            kt = kt == null ? k : CelType.Join(kt, k);
            vt = vt == null ? v : CelType.Join(vt, v);
            keys[i] = ke;
            vals[i] = ve;
        }

        return (CelType.Map(kt ?? CelType.Dyn, vt ?? CelType.Dyn), (ref Frame f) =>
        {
            var m = new MapValue(keys.Length);
            for (var i = 0; i < keys.Length; i++)
            {
                var k = keys[i](ref f);
                if (k.IsError)
                {
                    return k;
                }

                var v = vals[i](ref f);
                if (v.IsError)
                {
                    return v;
                }

                if (k.Kind is not (Kind.String or Kind.Int or Kind.Uint or Kind.Bool))
                {
                    return Value.Error("unsupported key type");
                }

                if (!m.TryAdd(k, v))
                {
                    return Value.Error("Failed with repeated key");
                }
            }

            return Value.Map(m);
        });
    }

    private (CelType, Eval) MessageLiteral(MessageNode msg, Scope? scope)
    {
        var factory = _env.MessageFactory;
        if (factory == null)
        {
            Report(msg, $"message construction ({msg.TypeName}{{...}}) is not supported in conditions", "use a map literal");
            return (CelType.Dyn, Fail("unsupported"));
        }

        var fields = msg.Fields.Select(fl => (fl.Field, Compile(fl.Value, scope).Item2)).ToArray();
        var name = msg.TypeName;
        return (CelType.Dyn, (ref Frame f) =>
        {
            var d = new Dictionary<string, Value>(StringComparer.Ordinal);
            foreach (var (fname, fe) in fields)
            {
                var v = fe(ref f);
                if (v.IsError)
                {
                    return v;
                }

                d[fname] = v;
            }

            return factory(name, d);
        });
    }

    internal static string? Suggest(string name, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestD = int.MaxValue;
        foreach (var c in candidates)
        {
            var d = Distance(name, c);
            if (d < bestD)
            {
                bestD = d;
                best = c;
            }
        }

        return best != null && bestD <= Math.Max(2, name.Length / 3) ? $"did you mean '{best}'?" : null;
    }

    private static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            prev[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                cur[j] = Math.Min(Math.Min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            (prev, cur) = (cur, prev);
        }

        return prev[b.Length];
    }

    internal static Regex BuildRegex(string pattern) =>
        new(pattern, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
}
