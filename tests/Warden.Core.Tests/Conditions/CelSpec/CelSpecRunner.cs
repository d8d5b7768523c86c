using System.Globalization;
using System.Text;
using Warden.Core.Conditions;
using YamlDotNet.Serialization;

namespace Warden.Core.Tests.Conditions.CelSpec;

public enum CaseStatus
{
    Passed,
    Failed,
    Skipped,
}

public sealed record CaseResult(string File, string Section, string Name, CaseStatus Status, string Detail)
{
    public string Key => $"{File}/{Section}/{Name}";
}

/// <summary>Runs the cel-spec SimpleTestFile cases against the condition compiler.</summary>
public static class CelSpecRunner
{
    public static readonly string[] RequiredFiles = ["basic", "logic", "comparisons", "lists", "macros", "string", "integer_math"];

    private static readonly Lazy<IReadOnlyList<CaseResult>> Cached = new(RunAllCore);

    public static IReadOnlyList<CaseResult> Results => Cached.Value;

    /// <summary>Walks up from the test assembly to find <c>shared/cel-spec-tests</c> (CI clones the repo beside <c>shared/</c>).</summary>
    public static string? LocateSpecDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "cel-spec-tests");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    public static Dictionary<string, string> LoadSkips()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Conditions", "CelSpec", "skips.yaml");
        var entries = new DeserializerBuilder().Build().Deserialize<List<Dictionary<string, string>>>(File.ReadAllText(path)) ?? [];
        return entries.ToDictionary(e => e["case"], e => e["reason"]);
    }

    private static IReadOnlyList<CaseResult> RunAllCore()
    {
        var dir = LocateSpecDirectory()
            ?? throw new InvalidOperationException(
                "cel-spec conformance data not found: expected a directory 'shared/cel-spec-tests' in the test assembly directory or one of its parents " +
                "(CI clones the repository beside 'shared/', i.e. <repo>/../shared/cel-spec-tests).");
        var skips = LoadSkips();
        var results = new List<CaseResult>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var path in Directory.GetFiles(dir, "*.textproto").Order(StringComparer.Ordinal))
        {
            var file = Path.GetFileNameWithoutExtension(path);
            var root = TextProtoReader.Parse(File.ReadAllText(path));
            foreach (var section in root.All("section").Cast<PbMessage>())
            {
                var sname = section.Str("name") ?? "";
                foreach (var test in section.All("test").Cast<PbMessage>())
                {
                    var name = test.Str("name") ?? "";

                    // A few names repeat within a section; later occurrences get #2, #3 so every case has its own key.
                    var n = seen[$"{file}/{sname}/{name}"] = seen.GetValueOrDefault($"{file}/{sname}/{name}") + 1;
                    if (n > 1)
                    {
                        name += "#" + n.ToString(CultureInfo.InvariantCulture);
                    }

                    var key = $"{file}/{sname}/{name}";
                    if (skips.TryGetValue(key, out var reason))
                    {
                        var probe = RunCase(test);
                        results.Add(new CaseResult(file, sname, name, CaseStatus.Skipped, probe.Status == CaseStatus.Passed ? "STALE SKIP (now passes): " + reason : reason));
                        continue;
                    }

                    var r = RunCase(test);
                    results.Add(r with { File = file, Section = sname, Name = name });
                }
            }
        }

        if (Environment.GetEnvironmentVariable("CEL_SPEC_DUMP") is { Length: > 0 } dump)
        {
            File.WriteAllLines(dump, results.Select(r => $"{r.Status}\t{r.Key}\t{r.Detail.ReplaceLineEndings(" ")}"));
        }

        return results;
    }

    private static CaseResult RunCase(PbMessage test)
    {
        var expr = test.Str("expr") ?? "";
        try
        {
            var disableCheck = test.Str("disable_check") == "true";
            var bindings = new Dictionary<string, Value>(StringComparer.Ordinal);
            foreach (var b in test.All("bindings").Cast<PbMessage>())
            {
                bindings[b.Str("key")!] = FromPb(b.Msg("value")!.Msg("value")!);
            }

            var vars = new Dictionary<string, CelType>(StringComparer.Ordinal);
            foreach (var t in test.All("type_env").Cast<PbMessage>())
            {
                vars[t.Str("name")!] = CelType.Dyn;
            }

            foreach (var k in bindings.Keys)
            {
                vars[k] = CelType.Dyn;
            }

            var env = new ConditionEnvironment { Variables = vars, MessageFactory = Messages.Create };
            var compiled = new ConditionCompiler(env).Compile(expr, check: !disableCheck, requireBool: false);
            var expectError = test.Has("eval_error") || test.Has("any_eval_errors");
            if (!compiled.Success)
            {
                var diag = string.Join("; ", compiled.Diagnostics);
                return expectError
                    ? Result(CaseStatus.Passed, "rejected at compile time: " + diag)
                    : Result(CaseStatus.Failed, $"{expr} => compile error: {diag}");
            }

            var input = new ConditionInput(args: null, context: null) { Bindings = bindings };
            var actual = compiled.Condition!.EvaluateValue(input);
            if (expectError)
            {
                return actual.IsError ? Result(CaseStatus.Passed, "") : Result(CaseStatus.Failed, $"{expr} => {actual}, expected an error");
            }

            var expected = test.Msg("value") is { } ev ? FromPb(ev) : Value.True;
            return StrictEqual(actual, expected)
                ? Result(CaseStatus.Passed, "")
                : Result(CaseStatus.Failed, $"{expr} => {actual}, expected {expected}");
        }
        catch (NotSupportedException e)
        {
            return Result(CaseStatus.Failed, $"{expr} => harness cannot represent: {e.Message}");
        }
    }

    private static CaseResult Result(CaseStatus s, string detail) => new("", "", "", s, detail);

    internal static Value FromPb(PbMessage m)
    {
        var (name, raw) = m.Fields.Single();
        var tok = (raw as PbScalar)?.Token;
        switch (name)
        {
            case "int64_value": return Value.Int(long.Parse(tok!, CultureInfo.InvariantCulture));
            case "uint64_value": return Value.Uint(ulong.Parse(tok!, CultureInfo.InvariantCulture));
            case "double_value": return Value.Double(ParseDouble(tok!));
            case "string_value": return Value.String(((PbScalar)raw).AsString());
            case "bytes_value": return Value.Bytes(((PbScalar)raw).Bytes!);
            case "bool_value": return Value.Bool(tok == "true");
            case "null_value": return Value.Null;
            case "type_value": return Value.TypeOf(((PbScalar)raw).AsString());
            case "list_value":
                return Value.List(((PbMessage)raw).All("values").Cast<PbMessage>().Select(FromPb).ToArray());
            case "map_value":
                var map = new MapValue(4);
                foreach (var e in ((PbMessage)raw).All("entries").Cast<PbMessage>())
                {
                    map.TryAdd(FromPb(e.Msg("key")!), FromPb(e.Msg("value")!));
                }

                return Value.Map(map);
            case "object_value":
            {
                var any = ((PbMessage)raw).Fields.Single();
                var typeName = any.Name.Trim('[', ']');
                typeName = typeName[(typeName.LastIndexOf('.') + 1)..];
                var fields = new Dictionary<string, Value>(StringComparer.Ordinal);
                foreach (var (fname, fval) in ((PbMessage)any.Value).Fields)
                {
                    var t = ((PbScalar)fval).Token;
                    fields[fname] = t is "true" or "false" ? Value.Bool(t == "true") : throw new NotSupportedException("object_value field " + fname);
                }

                return Messages.Create(typeName, fields);
            }

            default:
                throw new NotSupportedException(name);
        }
    }

    private static double ParseDouble(string t) => t.ToLowerInvariant() switch
    {
        "inf" or "infinity" => double.PositiveInfinity,
        "-inf" or "-infinity" => double.NegativeInfinity,
        "nan" => double.NaN,
        _ => double.Parse(t, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    /// <summary>Conformance equality: same CEL type and value (unlike CEL's ==, 1 and 1u differ here).</summary>
    internal static bool StrictEqual(in Value a, in Value b)
    {
        if (a.Kind != b.Kind)
        {
            return false;
        }

        switch (a.Kind)
        {
            case Kind.Double:
                return (double.IsNaN(a.AsDouble) && double.IsNaN(b.AsDouble)) || a.AsDouble == b.AsDouble;
            case Kind.List:
            {
                var x = ListOps.ToArray(a);
                var y = ListOps.ToArray(b);
                return x.Length == y.Length && x.Zip(y).All(p => StrictEqual(p.First, p.Second));
            }

            case Kind.Map:
            {
                if (MapOps.Count(a) != MapOps.Count(b))
                {
                    return false;
                }

                foreach (var (k, v) in MapOps.Entries(b))
                {
                    if (!MapOps.TryGet(a, k, out var av) || !StrictEqual(av, v))
                    {
                        return false;
                    }
                }

                return true;
            }

            case Kind.Error:
                return true;
        }

        long budget = long.MaxValue;
        var r = Ops.Equal(a, b, ref budget, 0);
        return r.Kind == Kind.Bool && r.AsBool;
    }

    public static string Table(IReadOnlyList<CaseResult> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| file | passed | failed | skipped | total | pass rate |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var g in results.GroupBy(r => r.File).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var p = g.Count(r => r.Status == CaseStatus.Passed);
            var f = g.Count(r => r.Status == CaseStatus.Failed);
            var s = g.Count(r => r.Status == CaseStatus.Skipped);
            var t = g.Count();
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {g.Key} | {p} | {f} | {s} | {t} | {(t == 0 ? 0 : 100.0 * p / t):F1}% |");
        }

        return sb.ToString();
    }
}

/// <summary>The few protobuf messages the comparison tests construct: wrappers and a minimal TestAllTypes.</summary>
internal static class Messages
{
    public static Value Create(string name, IReadOnlyDictionary<string, Value> fields)
    {
        var shortName = name[(name.LastIndexOf('.') + 1)..];
        if (name.StartsWith("google.protobuf.", StringComparison.Ordinal))
        {
            if (fields.TryGetValue("value", out var v))
            {
                return v;
            }

            return shortName switch
            {
                "BoolValue" => Value.False,
                "BytesValue" => Value.Bytes([]),
                "DoubleValue" or "FloatValue" => Value.Double(0),
                "Int32Value" or "Int64Value" => Value.Int(0),
                "UInt32Value" or "UInt64Value" => Value.Uint(0),
                "StringValue" => Value.String(""),
                "Value" => Value.Null,
                _ => Value.Error("unsupported message " + name),
            };
        }

        if (shortName is "TestAllTypes" or "NestedTestAllTypes")
        {
            return Value.Message(new MessageValue(shortName, new Dictionary<string, Value>(fields), Default));
        }

        return Value.Error("unsupported message " + name);
    }

    private static Value? Default(string field)
    {
        if (field.EndsWith("_wrapper", StringComparison.Ordinal))
        {
            return Value.Null;
        }

        return field switch
        {
            "single_int32" or "single_int64" or "single_sint32" or "single_sint64" or "single_fixed32" or "single_fixed64" => Value.Int(0),
            "single_uint32" or "single_uint64" => Value.Uint(0),
            "single_double" or "single_float" => Value.Double(0),
            "single_string" => Value.String(""),
            "single_bool" => Value.False,
            "single_bytes" => Value.Bytes([]),
            "child" => Create("NestedTestAllTypes", new Dictionary<string, Value>()),
            "payload" => Create("TestAllTypes", new Dictionary<string, Value>()),
            _ => null,
        };
    }
}
