namespace Warden.Core.Conditions;

/// <summary>The static shape of <c>context</c> and the accessor for every path in it.</summary>
internal static class ContextSchema
{
    private static readonly Value NoContext = Value.Error("no context supplied");

    public static readonly CelType Type = CelType.Struct("context", new Dictionary<string, CelType>
    {
        ["agent"] = CelType.Struct("context.agent", new Dictionary<string, CelType>
        {
            ["name"] = CelType.String,
            ["groups"] = CelType.StringList,
        }),
        ["session"] = CelType.Struct("context.session", new Dictionary<string, CelType>
        {
            ["id"] = CelType.String,
            ["labels"] = CelType.StringList,
        }),
        ["counts"] = CelType.Map(CelType.String, CelType.Int),
        ["tool"] = CelType.Struct("context.tool", new Dictionary<string, CelType>
        {
            ["server"] = CelType.String,
            ["name"] = CelType.String,
            ["classes"] = CelType.StringList,
        }),
        ["now"] = CelType.Timestamp,
    });

    public static Eval Accessor(string path) => path switch
    {
        "context.agent.name" => static (ref Frame f) => f.Context is { } c ? Value.String(c.AgentName) : NoContext,
        "context.agent.groups" => static (ref Frame f) => f.Context is { } c ? Value.List(c.AgentGroups) : NoContext,
        "context.session.id" => static (ref Frame f) => f.Context is { } c ? Value.String(c.SessionId) : NoContext,
        "context.session.labels" => static (ref Frame f) => f.Context is { } c ? Value.List(c.SessionLabels) : NoContext,
        "context.counts" => static (ref Frame f) => f.Context is { } c ? Value.Map(c.Counts) : NoContext,
        "context.tool.server" => static (ref Frame f) => f.Context is { } c ? Value.String(c.Server) : NoContext,
        "context.tool.name" => static (ref Frame f) => f.Context is { } c ? Value.String(c.Tool) : NoContext,
        "context.tool.classes" => static (ref Frame f) => f.Context is { } c ? Value.List(c.ToolClasses) : NoContext,
        "context.now" => static (ref Frame f) => f.Context is { } c ? Value.Timestamp(c.Now.UtcTicks) : NoContext,
        _ => Materialize(path),
    };

    /// <summary>A context sub-object used as a whole value becomes a map; rare, so it may allocate.</summary>
    private static Eval Materialize(string path)
    {
        var type = path.Split('.').Skip(1).Aggregate(Type, (t, seg) => t.Fields![seg]);
        var children = type.Fields!.Select(kv => (Key: Value.String(kv.Key), Eval: Accessor(path + "." + kv.Key))).ToArray();
        return (ref Frame f) =>
        {
            if (f.Context is null)
            {
                return NoContext;
            }

            var m = new MapValue(children.Length);
            foreach (var (key, eval) in children)
            {
                m.TryAdd(key, eval(ref f));
            }

            return Value.Map(m);
        };
    }
}
