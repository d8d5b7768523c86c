using System.Text.Json;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using Warden.Gateway.Approvals;

namespace Warden.Gateway.Mcp;

/// <summary>The MCP agent's end of a held call: progress on its token, confirmation by elicitation.</summary>
internal sealed class WaitingCaller(RequestContext<CallToolRequestParams> context) : IWaitingCaller
{
    public bool CanReportProgress => context.Params?.ProgressToken is not null;

    public bool CanConfirm => context.Server.ClientCapabilities?.Elicitation is not null;

    public async ValueTask ReportAsync(double progress, string message, CancellationToken cancellationToken)
    {
        if (context.Params?.ProgressToken is { } token)
        {
            await context.Server.NotifyProgressAsync(token, new ProgressNotificationValue { Progress = (float)progress, Message = message }, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask<bool?> ConfirmAsync(string message, CancellationToken cancellationToken)
    {
        var result = await context.Server.ElicitAsync(new ElicitRequestParams
        {
            Message = message,
            RequestedSchema = new ElicitRequestParams.RequestSchema
            {
                Properties = new Dictionary<string, ElicitRequestParams.PrimitiveSchemaDefinition>
                {
                    ["allow"] = new ElicitRequestParams.BooleanSchema { Title = "Allow this call", Description = "Run this exact call once" },
                },
                Required = ["allow"],
            },
        }, cancellationToken).ConfigureAwait(false);
        return result.Action switch
        {
            "accept" => result.Content?.TryGetValue("allow", out var allow) == true && allow.ValueKind == JsonValueKind.True,
            "decline" => false,
            _ => null,
        };
    }
}
