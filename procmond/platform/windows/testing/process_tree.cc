// sentinel_win_tree.exe: a small Windows process tree for the tests that
// check what procmond.exe records (tests/windows). Run as
//   sentinel_win_tree.exe SECONDS MARKER...
// it starts itself as `sentinel_win_tree.exe child SECONDS MARKER...`,
// prints "parent=<its pid> child=<the child's pid>" on one line, and both
// sleep SECONDS seconds (an argument with a space is passed on quoted). The
// child is ended with the parent.
#include <windows.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int wmain(int argc, wchar_t** argv) {
  if (argc >= 3 && std::wstring(argv[1]) == L"child") {
    ::Sleep(static_cast<DWORD>(std::wcstoul(argv[2], nullptr, 10)) * 1000);
    return 0;
  }
  if (argc < 3) {
    std::fprintf(stderr, "usage: sentinel_win_tree.exe SECONDS MARKER...\n");
    return 2;
  }
  wchar_t self[MAX_PATH];
  ::GetModuleFileNameW(nullptr, self, MAX_PATH);
  std::wstring command = L"\"" + std::wstring(self) + L"\" child";
  for (int i = 1; i < argc; ++i) {
    const std::wstring arg = argv[i];
    command += arg.find(L' ') == std::wstring::npos ? L" " + arg : L" \"" + arg + L"\"";
  }
  // The child dies with this process: a job object that kills on close.
  HANDLE job = ::CreateJobObjectW(nullptr, nullptr);
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits{};
  limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  ::SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits);
  STARTUPINFOW si{};
  si.cb = sizeof si;
  PROCESS_INFORMATION pi{};
  if (!::CreateProcessW(nullptr, command.data(), nullptr, nullptr, FALSE, 0, nullptr, nullptr, &si, &pi)) {
    std::fprintf(stderr, "CreateProcess failed: %lu\n", ::GetLastError());
    return 1;
  }
  ::AssignProcessToJobObject(job, pi.hProcess);
  std::printf("parent=%lu child=%lu\n", ::GetCurrentProcessId(), pi.dwProcessId);
  std::fflush(stdout);
  ::Sleep(static_cast<DWORD>(std::wcstoul(argv[1], nullptr, 10)) * 1000);
  ::TerminateProcess(pi.hProcess, 0);
  return 0;
}
