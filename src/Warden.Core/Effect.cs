namespace Warden.Core;

/// <summary>What Warden does with a call. Precedence when several rules apply: deny &gt; ask &gt; shadow &gt; allow.</summary>
public enum Effect : byte
{
    /// <summary>Forward the call.</summary>
    Allow = 0,

    /// <summary>Simulate the call: it never reaches the upstream.</summary>
    Shadow = 1,

    /// <summary>Hold the call until an authorized human decides.</summary>
    Ask = 2,

    /// <summary>Refuse the call with a message the agent's model can act on.</summary>
    Deny = 3,
}

/// <summary>The kind of MCP operation a call context describes; policy can match on it.</summary>
public enum McpOperation : byte
{
    /// <summary><c>tools/call</c> from the agent.</summary>
    ToolCall = 0,

    /// <summary><c>resources/read</c> from the agent.</summary>
    ResourceRead = 1,

    /// <summary><c>prompts/get</c> from the agent.</summary>
    PromptGet = 2,

    /// <summary><c>sampling/createMessage</c> sent by an upstream toward the agent.</summary>
    Sampling = 3,

    /// <summary><c>elicitation/create</c> sent by an upstream toward the agent.</summary>
    Elicitation = 4,
}

/// <summary>The classes of a tool. A set: a tool can be mutating, destructive and outbound at once.</summary>
[Flags]
public enum ToolClasses : byte
{
    /// <summary>No class known.</summary>
    None = 0,

    /// <summary>Reads only (MCP <c>readOnlyHint: true</c>).</summary>
    ReadOnly = 1,

    /// <summary>Changes state somewhere.</summary>
    Mutating = 2,

    /// <summary>May destroy data (MCP <c>destructiveHint</c> not false).</summary>
    Destructive = 4,

    /// <summary>Sends data out of the organisation's control (post, send, share, transfer).</summary>
    Outbound = 8,
}
