using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Warden.Core.Conditions;

/// <summary>What names exist when a condition is compiled: named lists and evaluation limits.</summary>
/// <remarks>
/// Variables are fixed: <c>args</c> (the call's JSON arguments), <c>context</c> (see <see cref="IConditionContext"/>)
/// and <c>lists</c> (the named lists below).
/// </remarks>
public sealed class ConditionEnvironment
{
    /// <summary>Named string lists, referenced as <c>lists.NAME</c>. Referencing a name not here is a compile error.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Lists { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Evaluation budget per call: one unit per macro iteration and per element or character processed.</summary>
    public long MaxCost { get; init; } = 1_000_000;

    /// <summary>Longest accepted condition source, in characters.</summary>
    public int MaxSourceLength { get; init; } = 8_192;

    /// <summary>Deepest accepted syntactic nesting.</summary>
    public int MaxNesting { get; init; } = 128;

    /// <summary>Longest accepted literal pattern for <c>matches</c> and <c>glob</c>.</summary>
    public int MaxPatternLength { get; init; } = 1_024;

    /// <summary>Extra declared variables (conformance suite bindings); values come from <see cref="ConditionInput"/>.</summary>
    internal IReadOnlyDictionary<string, CelType> Variables { get; init; } = new Dictionary<string, CelType>();

    /// <summary>Builds message literals (conformance suite only); null means message literals are rejected.</summary>
    internal Func<string, IReadOnlyDictionary<string, Value>, Value>? MessageFactory { get; init; }
}

/// <summary>A problem found while compiling a condition. Line and column are 1-based.</summary>
/// <param name="Line">1-based line.</param>
/// <param name="Column">1-based column (UTF-16 units).</param>
/// <param name="Message">What is wrong.</param>
/// <param name="Hint">How to fix it, when there is an obvious fix.</param>
public sealed record ConditionDiagnostic(int Line, int Column, string Message, string? Hint)
{
    /// <inheritdoc/>
    public override string ToString() => Hint is null ? $"{Line}:{Column}: {Message}" : $"{Line}:{Column}: {Message} (hint: {Hint})";
}

/// <summary>The result of <see cref="ConditionCompiler.Compile(string)"/>: a condition or diagnostics, never both.</summary>
public sealed class CompileResult
{
    internal CompileResult(CompiledCondition? condition, IReadOnlyList<ConditionDiagnostic> diagnostics)
    {
        Condition = condition;
        Diagnostics = diagnostics;
    }

    /// <summary>The compiled condition; null when <see cref="Diagnostics"/> is not empty.</summary>
    public CompiledCondition? Condition { get; }

    /// <summary>Syntax and type errors, in source order.</summary>
    public IReadOnlyList<ConditionDiagnostic> Diagnostics { get; }

    /// <summary>True when the condition compiled.</summary>
    public bool Success => Condition is not null;
}

/// <summary>The call context a condition can read as <c>context</c>.</summary>
public interface IConditionContext
{
    /// <summary><c>context.agent.name</c>.</summary>
    string AgentName { get; }

    /// <summary><c>context.agent.groups</c>.</summary>
    IReadOnlyList<string> AgentGroups { get; }

    /// <summary><c>context.session.id</c>.</summary>
    string SessionId { get; }

    /// <summary><c>context.session.labels</c>.</summary>
    IReadOnlyCollection<string> SessionLabels { get; }

    /// <summary><c>context.counts</c>: counts of earlier calls, keyed by whatever the policy engine counts.</summary>
    IReadOnlyDictionary<string, long> Counts { get; }

    /// <summary><c>context.tool.server</c>.</summary>
    string Server { get; }

    /// <summary><c>context.tool.name</c>.</summary>
    string Tool { get; }

    /// <summary><c>context.tool.classes</c>.</summary>
    IReadOnlyList<string> ToolClasses { get; }

    /// <summary><c>context.now</c>.</summary>
    DateTimeOffset Now { get; }
}

/// <summary>A simple <see cref="IConditionContext"/>; the policy engine may implement the interface on its own types instead.</summary>
public sealed class ConditionContext : IConditionContext
{
    /// <inheritdoc/>
    public string AgentName { get; init; } = "";

    /// <inheritdoc/>
    public IReadOnlyList<string> AgentGroups { get; init; } = [];

    /// <inheritdoc/>
    public string SessionId { get; init; } = "";

    /// <inheritdoc/>
    public IReadOnlyCollection<string> SessionLabels { get; init; } = [];

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, long> Counts { get; init; } = new Dictionary<string, long>();

    /// <inheritdoc/>
    public string Server { get; init; } = "";

    /// <inheritdoc/>
    public string Tool { get; init; } = "";

    /// <inheritdoc/>
    public IReadOnlyList<string> ToolClasses { get; init; } = [];

    /// <inheritdoc/>
    public DateTimeOffset Now { get; init; } = DateTimeOffset.UnixEpoch;
}

/// <summary>What one evaluation reads. Cheap to build per call: it only holds references.</summary>
public readonly struct ConditionInput
{
    /// <summary>Arguments as the MCP SDK hands them over (<c>CallToolRequestParams.Arguments</c>).</summary>
    public ConditionInput(IReadOnlyDictionary<string, JsonElement>? args, IConditionContext? context)
    {
        ArgsDictionary = args;
        Context = context;
    }

    /// <summary>Arguments as a JSON object element.</summary>
    public ConditionInput(JsonElement args, IConditionContext? context)
    {
        ArgsElement = args;
        Context = context;
    }

    /// <summary>Arguments as a dictionary, or null.</summary>
    public IReadOnlyDictionary<string, JsonElement>? ArgsDictionary { get; }

    /// <summary>Arguments as a JSON element (used when <see cref="ArgsDictionary"/> is null and this is an object).</summary>
    public JsonElement ArgsElement { get; }

    /// <summary>The call context, or null (then reading <c>context</c> is an evaluation error).</summary>
    public IConditionContext? Context { get; }

    /// <summary>Values of extra declared variables (conformance suite only).</summary>
    internal IReadOnlyDictionary<string, Value>? Bindings { get; init; }

    /// <summary>Argument reads shared by the conditions of one decision over these same arguments (see <see cref="ArgCache"/>).</summary>
    internal ArgCache? Cache { get; init; }
}

/// <summary>How an evaluation ended.</summary>
public enum ConditionOutcomeKind : byte
{
    /// <summary>The condition is false.</summary>
    False = 0,

    /// <summary>The condition is true.</summary>
    True = 1,

    /// <summary>Evaluation failed (missing key, type mismatch, overflow, cost limit, non-bool result).</summary>
    Error = 2,
}

/// <summary>The result of evaluating a condition: true, false, or a distinct error the policy engine can treat as firing.</summary>
public readonly struct ConditionOutcome : IEquatable<ConditionOutcome>
{
    private ConditionOutcome(ConditionOutcomeKind kind, string? message)
    {
        Kind = kind;
        ErrorMessage = message;
    }

    /// <summary>A true outcome.</summary>
    public static ConditionOutcome True { get; } = new(ConditionOutcomeKind.True, null);

    /// <summary>A false outcome.</summary>
    public static ConditionOutcome False { get; } = new(ConditionOutcomeKind.False, null);

    /// <summary>How the evaluation ended.</summary>
    public ConditionOutcomeKind Kind { get; }

    /// <summary>Why evaluation failed; null unless <see cref="IsError"/>.</summary>
    public string? ErrorMessage { get; }

    /// <summary>True when the condition evaluated to true.</summary>
    public bool IsTrue => Kind == ConditionOutcomeKind.True;

    /// <summary>True when evaluation failed.</summary>
    public bool IsError => Kind == ConditionOutcomeKind.Error;

    /// <summary>Fail-closed reading for deny and ask rules: an error counts as the rule firing.</summary>
    public bool IsTrueOrError => Kind != ConditionOutcomeKind.False;

    /// <summary>An error outcome.</summary>
    public static ConditionOutcome Error(string message) => new(ConditionOutcomeKind.Error, message);

    /// <summary>Equality by kind and message.</summary>
    public bool Equals(ConditionOutcome other) => Kind == other.Kind && ErrorMessage == other.ErrorMessage;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is ConditionOutcome o && Equals(o);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Kind, ErrorMessage);

    /// <summary>Equality operator.</summary>
    public static bool operator ==(ConditionOutcome left, ConditionOutcome right) => left.Equals(right);

    /// <summary>Inequality operator.</summary>
    public static bool operator !=(ConditionOutcome left, ConditionOutcome right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() => IsError ? "error: " + ErrorMessage : IsTrue ? "true" : "false";
}

/// <summary>A condition compiled once at load; evaluation is synchronous, thread-safe and allocation-free for predicates over existing values.</summary>
public sealed class CompiledCondition
{
    [ThreadStatic]
    private static Value[]? t_locals;

    private readonly Eval _eval;
    private readonly Pred? _pred;
    private readonly long _maxCost;
    private readonly int _slots;

    internal CompiledCondition(string source, Eval eval, Pred? pred, long maxCost, int slots)
    {
        Source = source;
        _eval = eval;
        // Macro variables need the per-thread slots that only the general entry sets up.
        _pred = slots == 0 ? pred : null;
        _maxCost = maxCost;
        _slots = slots;
    }

    /// <summary>The condition's source text.</summary>
    public string Source { get; }

    /// <summary>Evaluates the condition. Never throws for any input; failures are <see cref="ConditionOutcomeKind.Error"/>.</summary>
    public ConditionOutcome Evaluate(in ConditionInput input)
    {
        if (_pred is not null)
        {
            var frame = new Frame
            {
                ArgsDictionary = input.ArgsDictionary,
                ArgsElement = input.ArgsElement,
                Context = input.Context,
                Bindings = input.Bindings,
                Cache = input.Cache,
            };
            var r = Predicate(ref frame);
            if (r != Tri.Other)
            {
                return r == Tri.True ? ConditionOutcome.True : ConditionOutcome.False;
            }
        }

        return EvaluateGeneral(input);
    }

    // Out of line so that a predicate's caller keeps a small frame.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ConditionOutcome EvaluateGeneral(in ConditionInput input)
    {
        var v = EvaluateValue(input);
        return v.Kind switch
        {
            Kind.Bool => v.AsBool ? ConditionOutcome.True : ConditionOutcome.False,
            Kind.Error => ConditionOutcome.Error(v.ErrorMessage),
            _ => ConditionOutcome.Error("condition produced " + v.TypeName + ", not bool"),
        };
    }

    /// <summary>True when the condition has a predicate form (see <see cref="Pred"/>).</summary>
    internal bool HasPredicate => _pred is not null;

    /// <summary>
    /// The condition's predicate form (see <see cref="Pred"/>) over a frame the caller set up once for several
    /// conditions (a policy decision): <see cref="Tri.True"/> or <see cref="Tri.False"/> when that settles it,
    /// <see cref="Tri.Other"/> when the caller must call <see cref="Evaluate"/> (an error, or no predicate form).
    /// </summary>
    internal int Predicate(ref Frame frame)
    {
        var p = _pred;
        if (p is null)
        {
            return Tri.Other;
        }

        // Each condition starts with its own budget, as in EvaluateValue.
        frame.Budget = _maxCost;
        try
        {
            return p(ref frame);
        }
        catch (Exception ex) when (IsEvaluationFailure(ex))
        {
            // The general form meets the same failure and turns it into the error outcome.
            return Tri.Other;
        }
    }

    private static bool IsEvaluationFailure(Exception ex) =>
        ex is InsufficientExecutionStackException or RegexMatchTimeoutException or InvalidOperationException or FormatException
            or ArgumentException or OverflowException or KeyNotFoundException or IndexOutOfRangeException;

    internal Value EvaluateValue(in ConditionInput input)
    {
        var frame = new Frame
        {
            ArgsDictionary = input.ArgsDictionary,
            ArgsElement = input.ArgsElement,
            Context = input.Context,
            Bindings = input.Bindings,
            Cache = input.Cache,
            Budget = _maxCost,
        };

        // Macro variables live in a per-thread array taken for the evaluation, so a re-entrant evaluation on the
        // same thread (a context implementation evaluating another condition) gets its own array.
        Value[]? locals = null;
        if (_slots > 0)
        {
            locals = t_locals ?? new Value[Slots.Count];
            t_locals = null;
            frame.Locals = locals;
        }

        try
        {
            return _eval(ref frame);
        }
        catch (InsufficientExecutionStackException)
        {
            return Value.Error("evaluation nested too deeply");
        }
        catch (RegexMatchTimeoutException)
        {
            return Value.Error("pattern match timed out");
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or ArgumentException or OverflowException or KeyNotFoundException or IndexOutOfRangeException)
        {
            // Defence in depth: a bug in one operator must not take the gateway down; it surfaces as an error outcome.
            return Value.Error("internal evaluation error: " + ex.Message);
        }
        finally
        {
            if (locals != null)
            {
                // Cleared so the thread does not keep argument documents alive.
                Array.Clear(locals, 0, _slots);
                t_locals = locals;
            }
        }
    }
}

/// <summary>Evaluates one compiled node.</summary>
internal delegate Value Eval(ref Frame frame);

/// <summary>Per-evaluation state, on the caller's stack.</summary>
internal struct Frame
{
    public IReadOnlyDictionary<string, JsonElement>? ArgsDictionary;
    public JsonElement ArgsElement;
    public IConditionContext? Context;
    public IReadOnlyDictionary<string, Value>? Bindings;
    public ArgCache? Cache;
    public long Budget;
    public Value[] Locals;
}

/// <summary>Limits for macro iteration variables.</summary>
internal static class Slots
{
    /// <summary>Deepest macro nesting; each nested macro gets its own variable slot.</summary>
    public const int Count = 16;
}
