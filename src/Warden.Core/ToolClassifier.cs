namespace Warden.Core;

/// <summary>
/// Derives a tool's classes from its MCP annotations. Annotations come from the upstream, which is only
/// partly trusted, so policy can replace the whole set for any tool.
/// </summary>
public static class ToolClassifier
{
    /// <summary>
    /// <c>read_only</c> when <c>readOnlyHint</c> is true, otherwise <c>mutating</c>; plus <c>destructive</c> unless
    /// <c>destructiveHint</c> is false; plus <c>outbound</c> when <c>openWorldHint</c> is not false and the tool is not
    /// read-only. Missing hints take MCP's defaults (readOnly false, destructive true, openWorld true), so an
    /// unannotated tool is treated as the most dangerous kind.
    /// </summary>
    public static ToolClasses FromAnnotations(bool? readOnlyHint, bool? destructiveHint, bool? openWorldHint)
    {
        if (readOnlyHint == true)
        {
            return ToolClasses.ReadOnly;
        }

        var classes = ToolClasses.Mutating;
        if (destructiveHint != false)
        {
            classes |= ToolClasses.Destructive;
        }

        if (openWorldHint != false)
        {
            classes |= ToolClasses.Outbound;
        }

        return classes;
    }

    /// <summary>The policy names of the classes in a set, in a fixed order.</summary>
    public static IReadOnlyList<string> Names(ToolClasses classes)
    {
        var names = new List<string>(4);
        if ((classes & ToolClasses.ReadOnly) != 0)
        {
            names.Add("read_only");
        }

        if ((classes & ToolClasses.Mutating) != 0)
        {
            names.Add("mutating");
        }

        if ((classes & ToolClasses.Destructive) != 0)
        {
            names.Add("destructive");
        }

        if ((classes & ToolClasses.Outbound) != 0)
        {
            names.Add("outbound");
        }

        return names;
    }

    /// <summary>Parses one class name as written in policy; null when unknown.</summary>
    public static ToolClasses? Parse(string name) => name switch
    {
        "read_only" => ToolClasses.ReadOnly,
        "mutating" => ToolClasses.Mutating,
        "destructive" => ToolClasses.Destructive,
        "outbound" => ToolClasses.Outbound,
        _ => null,
    };
}
