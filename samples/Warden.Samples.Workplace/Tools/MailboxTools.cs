using System.ComponentModel;
using System.Text.Json.Nodes;
using ModelContextProtocol.Server;

namespace Warden.Samples.Workplace.Tools;

[McpServerToolType]
public static class MailboxTools
{
    [McpServerTool(Name = "list_mail", Title = "List mail", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false)]
    [Description("Lists mails in a folder, newest first: id, sender, subject, date, read flag.")]
    public static async Task<string> ListMail(
        WorkplaceStore store,
        [Description("Folder: inbox, sent, archive, or all.")] string folder = "inbox",
        [Description("Maximum number of mails to return (1-500).")] int limit = 50,
        CancellationToken cancellationToken = default)
    {
        if (limit is < 1 or > 500)
        {
            throw new WorkplaceException("limit must be between 1 and 500.");
        }

        return ToolResults.Json(await store.ListMailAsync(folder, limit, cancellationToken));
    }

    [McpServerTool(Name = "read_mail", Title = "Read mail", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false)]
    [Description("Returns one mail with recipients and body.")]
    public static async Task<string> ReadMail(
        WorkplaceStore store,
        [Description("Mail id, e.g. mail-001.")] string id,
        CancellationToken cancellationToken = default) =>
        ToolResults.Json(await store.ReadMailAsync(id, cancellationToken));

    [McpServerTool(Name = "delete_mail", Title = "Delete mail", ReadOnly = false, Destructive = true, Idempotent = true, OpenWorld = false)]
    [Description("Permanently deletes the given mails. There is no trash folder and no undo.")]
    public static async Task<string> DeleteMail(
        WorkplaceStore store,
        WorkplaceOptions options,
        [Description("Ids of the mails to delete.")] string[] ids,
        CancellationToken cancellationToken = default)
    {
        if (ids.Length == 0)
        {
            throw new WorkplaceException("ids must name at least one mail.");
        }

        await ToolResults.BeforeMutationAsync(options, cancellationToken);
        var result = await store.DeleteMailAsync(ids, cancellationToken);
        OperationLog.Note("deleted", result["deleted"]?.DeepClone());
        OperationLog.Note("remaining", result["remaining"]?.DeepClone());
        return ToolResults.Json(result);
    }

    [McpServerTool(Name = "send_mail", Title = "Send mail", ReadOnly = false, Destructive = false, Idempotent = false, OpenWorld = true)]
    [Description("Sends a mail to the given recipients (outbound: it leaves the workplace) and keeps a copy in 'sent'.")]
    public static async Task<string> SendMail(
        WorkplaceStore store,
        WorkplaceOptions options,
        [Description("Recipient addresses.")] string[] to,
        [Description("Subject line.")] string subject,
        [Description("Plain-text body.")] string body,
        [Description("Carbon-copy addresses.")] string[]? cc = null,
        CancellationToken cancellationToken = default)
    {
        if (to.Length == 0)
        {
            throw new WorkplaceException("to must name at least one recipient.");
        }

        await ToolResults.BeforeMutationAsync(options, cancellationToken);
        var result = await store.SendMailAsync(to, cc ?? [], subject, body, cancellationToken);
        OperationLog.Note("id", result["id"]?.DeepClone());
        return ToolResults.Json(result);
    }
}
