namespace Warden.Tests.Shared;

/// <summary>Where this project writes its screenshots.</summary>
internal static partial class Repo
{
    public static string Screenshots
    {
        get
        {
            var dir = Path.Combine(Root, "artifacts", "screenshots");
            Directory.CreateDirectory(dir);
            return dir;
        }
    }
}
