using System.ComponentModel;
using System.Text.Json;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using static ModelContextProtocol.Protocol.ElicitRequestParams;

namespace Warden.Conformance.Fixture;

/// <summary>The tools the conformance suite's server scenarios call, by the names and shapes they check.</summary>
[McpServerToolType]
public sealed class FixtureTools
{
    [McpServerTool(Name = "test_simple_text", ReadOnly = true, OpenWorld = false)]
    [Description("Returns a simple text response.")]
    public static string SimpleText() => "This is a simple text response for testing.";

    [McpServerTool(Name = "test_image_content", ReadOnly = true, OpenWorld = false)]
    [Description("Returns a 1x1 PNG image.")]
    public static ImageContentBlock ImageContent() => ImageContentBlock.FromBytes(Media.Png, "image/png");

    [McpServerTool(Name = "test_audio_content", ReadOnly = true, OpenWorld = false)]
    [Description("Returns a short silent WAV clip.")]
    public static AudioContentBlock AudioContent() => AudioContentBlock.FromBytes(Media.Wav, "audio/wav");

    [McpServerTool(Name = "test_embedded_resource", ReadOnly = true, OpenWorld = false)]
    [Description("Returns an embedded text resource.")]
    public static EmbeddedResourceBlock EmbeddedResource() => new()
    {
        Resource = new TextResourceContents
        {
            Uri = "test://embedded-resource",
            MimeType = "text/plain",
            Text = "This is an embedded resource content.",
        },
    };

    [McpServerTool(Name = "test_multiple_content_types", ReadOnly = true, OpenWorld = false)]
    [Description("Returns text, image and embedded resource content in one result.")]
    public static IEnumerable<ContentBlock> MultipleContentTypes() =>
    [
        new TextContentBlock { Text = "Multiple content types test:" },
        ImageContentBlock.FromBytes(Media.Png, "image/png"),
        new EmbeddedResourceBlock
        {
            Resource = new TextResourceContents
            {
                Uri = "test://mixed-content-resource",
                MimeType = "application/json",
                Text = """{"test":"data","value":123}""",
            },
        },
    ];

    [McpServerTool(Name = "test_tool_with_logging", ReadOnly = true, OpenWorld = false)]
    [Description("Sends three info log notifications while it runs.")]
    public static async Task<string> ToolWithLogging(McpServer server, CancellationToken cancellationToken)
    {
        // The client logger provider honours the level the client set with logging/setLevel.
        var logger = server.AsClientLoggerProvider().CreateLogger("conformance-fixture");
        logger.LogInformation("Tool execution started");
        await Task.Delay(50, cancellationToken);
        logger.LogInformation("Tool processing data");
        await Task.Delay(50, cancellationToken);
        logger.LogInformation("Tool execution completed");
        return "Tool with logging executed successfully";
    }

    [McpServerTool(Name = "test_tool_with_progress", ReadOnly = true, OpenWorld = false)]
    [Description("Reports progress 0, 50 and 100 of 100 when the request carries a progress token.")]
    public static async Task<string> ToolWithProgress(IProgress<ProgressNotificationValue> progress, CancellationToken cancellationToken)
    {
        progress.Report(new ProgressNotificationValue { Progress = 0, Total = 100 });
        await Task.Delay(50, cancellationToken);
        progress.Report(new ProgressNotificationValue { Progress = 50, Total = 100 });
        await Task.Delay(50, cancellationToken);
        progress.Report(new ProgressNotificationValue { Progress = 100, Total = 100 });
        return "Tool with progress executed successfully";
    }

    [McpServerTool(Name = "test_error_handling", ReadOnly = true, OpenWorld = false)]
    [Description("Always fails with a tool-level error (isError: true).")]
    public static CallToolResult ErrorHandling() => new()
    {
        IsError = true,
        Content = [new TextContentBlock { Text = "This tool intentionally returns an error for testing" }],
    };

    [McpServerTool(Name = "test_sampling", ReadOnly = true, OpenWorld = true)]
    [Description("Asks the client's LLM (sampling/createMessage) to answer the prompt.")]
    public static async Task<CallToolResult> Sampling(
        McpServer server,
        [Description("The prompt to send to the LLM")] string prompt,
        CancellationToken cancellationToken)
    {
        if (server.ClientCapabilities?.Sampling is null)
        {
            return Error("The client does not support sampling.");
        }

        var result = await server.SampleAsync(new CreateMessageRequestParams
        {
            Messages = [new SamplingMessage { Role = Role.User, Content = [new TextContentBlock { Text = prompt }] }],
            MaxTokens = 100,
        }, cancellationToken);

        string text = result.Content.OfType<TextContentBlock>().FirstOrDefault()?.Text ?? "(no text)";
        return Text($"LLM response: {text}");
    }

    [McpServerTool(Name = "test_elicitation", ReadOnly = true, OpenWorld = false)]
    [Description("Asks the user (elicitation/create) for a username and an email address.")]
    public static async Task<CallToolResult> Elicitation(
        McpServer server,
        [Description("The message to show the user")] string message,
        CancellationToken cancellationToken)
    {
        if (server.ClientCapabilities?.Elicitation is null)
        {
            return Error("The client does not support elicitation.");
        }

        var result = await server.ElicitAsync(new ElicitRequestParams
        {
            Message = message,
            RequestedSchema = new RequestSchema
            {
                Properties =
                {
                    ["username"] = new StringSchema { Description = "User's response" },
                    ["email"] = new StringSchema { Description = "User's email address" },
                },
                Required = ["username", "email"],
            },
        }, cancellationToken);

        return Text($"User response: action={result.Action}, content={JsonSerializer.Serialize(result.Content)}");
    }

    [McpServerTool(Name = "test_elicitation_sep1034_defaults", ReadOnly = true, OpenWorld = false)]
    [Description("Elicits with a schema that has a default for every primitive type (SEP-1034).")]
    public static async Task<CallToolResult> ElicitationSep1034Defaults(McpServer server, CancellationToken cancellationToken)
    {
        var result = await server.ElicitAsync(new ElicitRequestParams
        {
            Message = "Please review the defaults and accept",
            RequestedSchema = new RequestSchema
            {
                Properties =
                {
                    ["name"] = new StringSchema { Description = "User name", Default = "John Doe" },
                    ["age"] = new NumberSchema { Type = "integer", Description = "User age", Default = 30 },
                    ["score"] = new NumberSchema { Type = "number", Description = "User score", Default = 95.5 },
                    ["status"] = new UntitledSingleSelectEnumSchema
                    {
                        Description = "User status", Enum = ["active", "inactive", "pending"], Default = "active",
                    },
                    ["verified"] = new BooleanSchema { Description = "Verification status", Default = true },
                },
            },
        }, cancellationToken);

        return Text($"Elicitation completed: action={result.Action}, content={JsonSerializer.Serialize(result.Content)}");
    }

    [McpServerTool(Name = "test_elicitation_sep1330_enums", ReadOnly = true, OpenWorld = false)]
    [Description("Elicits with all five enum schema variants (SEP-1330).")]
    public static async Task<CallToolResult> ElicitationSep1330Enums(McpServer server, CancellationToken cancellationToken)
    {
        var result = await server.ElicitAsync(new ElicitRequestParams
        {
            Message = "Please pick from each list",
            RequestedSchema = new RequestSchema
            {
                Properties =
                {
                    ["untitledSingle"] = new UntitledSingleSelectEnumSchema { Enum = ["option1", "option2", "option3"] },
                    ["titledSingle"] = new TitledSingleSelectEnumSchema
                    {
                        OneOf =
                        [
                            new EnumSchemaOption { Const = "value1", Title = "First Option" },
                            new EnumSchemaOption { Const = "value2", Title = "Second Option" },
                            new EnumSchemaOption { Const = "value3", Title = "Third Option" },
                        ],
                    },
#pragma warning disable MCP9001 // The suite checks that the deprecated enumNames form still goes out intact.
                    ["legacyEnum"] = new LegacyTitledEnumSchema
                    {
                        Enum = ["opt1", "opt2", "opt3"], EnumNames = ["Option One", "Option Two", "Option Three"],
                    },
#pragma warning restore MCP9001
                    ["untitledMulti"] = new UntitledMultiSelectEnumSchema
                    {
                        Items = new UntitledEnumItemsSchema { Enum = ["option1", "option2", "option3"] },
                    },
                    ["titledMulti"] = new TitledMultiSelectEnumSchema
                    {
                        Items = new TitledEnumItemsSchema
                        {
                            AnyOf =
                            [
                                new EnumSchemaOption { Const = "value1", Title = "First Choice" },
                                new EnumSchemaOption { Const = "value2", Title = "Second Choice" },
                                new EnumSchemaOption { Const = "value3", Title = "Third Choice" },
                            ],
                        },
                    },
                },
            },
        }, cancellationToken);

        return Text($"Elicitation completed: action={result.Action}, content={JsonSerializer.Serialize(result.Content)}");
    }

    [McpServerTool(Name = "test_reconnection", ReadOnly = true, OpenWorld = false)]
    [Description("Closes the response stream mid-call (SEP-1699 polling); the result arrives after the client reconnects.")]
    public static async Task<string> Reconnection(RequestContext<CallToolRequestParams> context, CancellationToken cancellationToken)
    {
        try
        {
            await context.EnablePollingAsync(TimeSpan.FromMilliseconds(500), cancellationToken);
        }
        catch (InvalidOperationException)
        {
            // Transport or negotiated version without polling: answer on the open stream instead.
        }

        await Task.Delay(200, cancellationToken);
        return "Reconnection test completed successfully";
    }

    [McpServerTool(Name = "test_update_watched_resource", ReadOnly = true, OpenWorld = false)]
    [Description("Sends notifications/resources/updated for test://watched-resource to its subscribers (for relay tests).")]
    public static async Task<string> UpdateWatchedResource(ResourceSubscriptions subscriptions, CancellationToken cancellationToken)
    {
        int sent = await subscriptions.NotifyUpdatedAsync(FixtureResources.WatchedUri, cancellationToken);
        return $"Notified {sent} subscriber(s)";
    }

    /// <summary>
    /// Declared by hand: the schema generated from a .NET signature would not carry $schema, $defs and
    /// additionalProperties:false, which is exactly what the SEP-1613 scenario checks survive the trip.
    /// </summary>
    public static McpServerTool JsonSchema2020Tool()
    {
        var tool = McpServerTool.Create(
            (RequestContext<CallToolRequestParams> context) =>
                $"Received: {JsonSerializer.Serialize(context.Params?.Arguments ?? new Dictionary<string, JsonElement>())}",
            new McpServerToolCreateOptions
            {
                Name = "json_schema_2020_12_tool",
                Description = "Tool with JSON Schema 2020-12 features",
                ReadOnly = true,
                OpenWorld = false,
            });
        tool.ProtocolTool.InputSchema = JsonElement.Parse("""
            {
              "$schema": "https://json-schema.org/draft/2020-12/schema",
              "type": "object",
              "$defs": {
                "address": {
                  "type": "object",
                  "properties": { "street": { "type": "string" }, "city": { "type": "string" } }
                }
              },
              "properties": {
                "name": { "type": "string" },
                "address": { "$ref": "#/$defs/address" }
              },
              "additionalProperties": false
            }
            """);
        return tool;
    }

    private static CallToolResult Text(string text) => new() { Content = [new TextContentBlock { Text = text }] };

    private static CallToolResult Error(string text) => new() { IsError = true, Content = [new TextContentBlock { Text = text }] };
}
