/*
   heistwatch demo rules: the dropper chain of the demo's incident report (a shortcut in a job-offer archive runs
   a VBScript that downloads a DLL with hidden PowerShell, loads it with rundll32 and adds a Run key), as JPCERT/CC
   describes it for Dangerous Password and ClearSky for CryptoCore. Written for heistwatch; Apache-2.0.
*/

rule heistwatch_demo_lnk_double_extension_script
{
    meta:
        author = "heistwatch demo"
        description = "Windows shortcut named like a document (.pdf.lnk, .docx.lnk) that starts a script host"
        reference = "https://blogs.jpcert.or.jp/en/2021/01/Lazarus_malware2.html"
        date = "2026-03-20"
        actor = "Dangerous Password"
        mitre_attack = "T1204.002, T1036.007, T1059.005"
        score = 70
    strings:
        $wscript = "wscript" wide ascii nocase
        $cscript = "cscript" wide ascii nocase
        $mshta = "mshta" wide ascii nocase
        $script = ".vbs" wide ascii nocase
    condition:
        uint32(0) == 0x0000004C and uint32(4) == 0x00021401
        and filename matches /\.(pdf|docx?|xlsx?|pptx?|txt)\.lnk$/i
        and any of ($wscript, $cscript, $mshta) and $script
}

rule heistwatch_demo_vbs_hidden_powershell_dropper
{
    meta:
        author = "heistwatch demo"
        description = "VBScript that runs hidden PowerShell to download a DLL, loads it with rundll32 or adds a Run key"
        reference = "https://www.clearskysec.com/cryptocore/"
        date = "2026-03-20"
        actor = "Dangerous Password"
        mitre_attack = "T1059.005, T1059.001, T1105, T1218.011, T1547.001"
        score = 80
    strings:
        $shell = "WScript.Shell" ascii wide nocase
        $ps = "powershell" ascii wide nocase
        $hidden1 = "-w hidden" ascii wide nocase
        $hidden2 = "-windowstyle hidden" ascii wide nocase
        $dl1 = "iwr " ascii wide nocase
        $dl2 = "Invoke-WebRequest" ascii wide nocase
        $dl3 = "DownloadFile" ascii wide nocase
        $dl4 = "DownloadString" ascii wide nocase
        $load = "rundll32" ascii wide nocase
        $run = "CurrentVersion\\Run" ascii wide nocase
    condition:
        filesize < 64KB and $shell and $ps and any of ($hidden*) and any of ($dl*) and ($load or $run)
}
