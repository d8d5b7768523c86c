using System.Security.Cryptography;

namespace Warden.Gateway.Audit;

/// <summary>
/// The key of the audit's keyed digests: <c>audit.key</c> in the data folder, 32 random bytes (base64), created on
/// first use with mode 0600. Whoever holds it can test guesses against digests, so it never leaves the folder;
/// losing it makes existing digests unmatchable (the chain still verifies: it does not depend on the key).
/// </summary>
public static class AuditKeyFile
{
    /// <summary>The key file's name in the data folder.</summary>
    public const string FileName = "audit.key";

    /// <summary>Reads the key, creating it when missing.</summary>
    public static byte[] LoadOrCreate(string dataFolder)
    {
        var path = Path.Combine(dataFolder, FileName);
        if (Read(path) is { } key)
        {
            return key;
        }

        var fresh = RandomNumberGenerator.GetBytes(32);
        var temp = path + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.WriteThrough };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(temp, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(Convert.ToBase64String(fresh));
        }

        try
        {
            File.Move(temp, path, overwrite: false); // another process may have won the race: use its key
        }
        catch (IOException)
        {
            File.Delete(temp);
        }

        return Read(path) ?? throw new InvalidOperationException($"could not create the audit key file {path}");
    }

    /// <summary>Reads the key, or null when the file does not exist.</summary>
    public static byte[]? Read(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var key = Convert.FromBase64String(File.ReadAllText(path).Trim());
        return key.Length >= 16 ? key : throw new InvalidOperationException($"the audit key file {path} is too short");
    }
}
