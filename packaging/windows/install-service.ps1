<#
.SYNOPSIS
  Installs procmond.exe as the Windows service SentinelDProcmond (SPEC §15, docs/platforms.md).

.DESCRIPTION
  Copies procmond.exe into "$env:ProgramFiles\SentinelD", creates the data directory
  "$env:ProgramData\SentinelD" readable and writable only by LocalSystem and the
  Administrators group (no inherited permissions: an unprivileged user can neither
  read the history nor swap a file in it), writes a default config.yaml there when
  none exists, registers the service to run "procmond.exe --service" as LocalSystem,
  started automatically, restarted by the Service Control Manager after a failure,
  and starts it. Run from an elevated PowerShell:

    powershell -ExecutionPolicy Bypass -File install-service.ps1 -Binary .\procmond.exe

  -Uninstall stops and removes the service (the data directory is kept).
  Exit codes: 0 done, 1 a step failed (named on stderr), 2 bad arguments or not elevated.
#>
param(
  [string]$Binary = (Join-Path $PSScriptRoot "procmond.exe"),
  [switch]$Uninstall
)
$ErrorActionPreference = "Stop"
$ServiceName = "SentinelDProcmond"
$InstallDir = Join-Path $env:ProgramFiles "SentinelD"
$DataDir = Join-Path $env:ProgramData "SentinelD"

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
  [Console]::Error.WriteLine("install-service: run from an elevated PowerShell (Administrator)")
  exit 2
}

try {
  if ($Uninstall) {
    if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
      Stop-Service -Name $ServiceName -ErrorAction SilentlyContinue
      & sc.exe delete $ServiceName | Out-Null
      if ($LASTEXITCODE -ne 0) { throw "sc.exe delete $ServiceName failed ($LASTEXITCODE)" }
    }
    Write-Output "install-service: $ServiceName removed; $DataDir kept"
    exit 0
  }
  if (-not (Test-Path -LiteralPath $Binary -PathType Leaf)) {
    [Console]::Error.WriteLine("install-service: $Binary not found (-Binary PATH\procmond.exe)")
    exit 2
  }

  New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
  Copy-Item -LiteralPath $Binary -Destination (Join-Path $InstallDir "procmond.exe") -Force

  # SYSTEM and Administrators only, nothing inherited; the same for the program directory's copy.
  New-Item -ItemType Directory -Force -Path $DataDir | Out-Null
  & icacls.exe $DataDir /inheritance:r /grant:r "*S-1-5-18:(OI)(CI)F" "*S-1-5-32-544:(OI)(CI)F" | Out-Null
  if ($LASTEXITCODE -ne 0) { throw "icacls $DataDir failed ($LASTEXITCODE)" }
  $Config = Join-Path $DataDir "config.yaml"
  if (-not (Test-Path -LiteralPath $Config)) {
    @(
      "# SentinelD procmond on Windows (docs/platforms.md). Keys as on Linux (docs/configuration.md).",
      "database:",
      "  path: '$DataDir\events.db'",
      "  audit_path: '$DataDir\audit.db'",
      "collection:",
      "  interval_secs: 10"
    ) | Set-Content -LiteralPath $Config -Encoding UTF8
  }

  $Exe = Join-Path $InstallDir "procmond.exe"
  if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
    Stop-Service -Name $ServiceName -ErrorAction SilentlyContinue
    & sc.exe config $ServiceName binPath= "`"$Exe`" --service" start= auto obj= LocalSystem | Out-Null
  } else {
    New-Service -Name $ServiceName -BinaryPathName "`"$Exe`" --service" -DisplayName "SentinelD process collector" `
      -Description "Records every process of this host into a tamper-evident history (SentinelD procmond)." `
      -StartupType Automatic | Out-Null
  }
  # Restart after 5 s on the first two failures, after 60 s thereafter; the failure count resets daily.
  & sc.exe failure $ServiceName reset= 86400 actions= restart/5000/restart/5000/restart/60000 | Out-Null
  if ($LASTEXITCODE -ne 0) { throw "sc.exe failure $ServiceName failed ($LASTEXITCODE)" }
  # The service's own SID type: its token carries NT SERVICE\SentinelDProcmond for ACLs.
  & sc.exe sidtype $ServiceName unrestricted | Out-Null
  Start-Service -Name $ServiceName
  Write-Output "install-service: $ServiceName installed and running ($Exe --service; data in $DataDir)"
  exit 0
} catch {
  [Console]::Error.WriteLine("install-service: $($_.Exception.Message)")
  exit 1
}
