; GhubAi Tray: a per-user Windows installer (no administrator prompt).
;
;   makensis -DVERSION=0.1.0 -DSTAGE=path\to\ghubai-tray -DOUTFILE=ghubai-tray-0.1.0-setup.exe ghubai-tray.nsi
;
; STAGE is PyInstaller's one-folder build (ghubai-tray.exe, the windowed tray app;
; ghubai-tray-cli.exe, the same program for a console; and _internal\). `make
; dist-windows` builds both and this installer; `make dist-windows-check` installs,
; runs, upgrades and uninstalls it under Wine.
; Installs to %LOCALAPPDATA%\Programs\GhubAi Tray, adds a Start menu shortcut,
; optionally starts at login (the same HKCU Run value the app's own menu
; toggle writes), and refuses to run while GhubAi Tray is running (its
; single-instance mutex, Local\GhubAiTray, tells). It installs only into a folder
; that is new, empty, or an earlier install of its own (its uninstall.exe): a
; folder of the owner's (/D=C:\Users\me\Documents) is refused, exit code 2. The
; uninstaller removes what the installer put there (the two programs, _internal\,
; uninstall.exe), then the folder only if that left it empty, so nothing of the
; owner's in it is lost; its Run value and shortcuts; and asks before removing
; settings, logs and the stored token (a silent uninstall, /S, keeps them).
; Upgrading is installing over it: the program is replaced, settings are kept.
; /UPDATE (the app's own "Install update", docs/UPDATES.md): instead of refusing while
; the app runs, wait up to 15 minutes for it to end (it finishes its requests first;
; exit code 3 if it never does), install into the folder the Uninstall entry names,
; and start the app again, the new version or, should the install fail, the old one.

Unicode true
; A 64-bit installer: the bundle is 64-bit anyway, and the 32-bit stub does not
; even start where there is no 32-bit subsystem (a 64-bit-only Wine).
Target amd64-unicode
!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"

!ifndef VERSION
  !error "define VERSION (-DVERSION=x.y.z)"
!endif
!ifndef STAGE
  !error "define STAGE, the PyInstaller one-folder build to package"
!endif
!ifndef OUTFILE
  !define OUTFILE "ghubai-tray-${VERSION}-setup.exe"
!endif

!define APP "GhubAi Tray"
!define EXE "ghubai-tray.exe"
!define CLI "ghubai-tray-cli.exe"
!define RUNKEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define UNINSTKEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\GhubAiTray"
!define MUTEX "Local\GhubAiTray"

Name "${APP}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP}"
InstallDirRegKey HKCU "${UNINSTKEY}" "InstallLocation"
RequestExecutionLevel user
SetCompressor /SOLID lzma
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP} installer"
VIAddVersionKey "CompanyName" "GhubAi"
VIAddVersionKey "LegalCopyright" "GhubAi Tray developers"

!define MUI_ICON "..\..\assets\ghubai.ico"
!define MUI_UNICON "..\..\assets\ghubai.ico"
!define MUI_FINISHPAGE_RUN "$INSTDIR\${EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP} now"
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

; Refuse while the app runs: its single-instance mutex exists then.
!macro RefuseWhileRunning
  System::Call 'kernel32::OpenMutexW(i 0x00100000, i 0, w "${MUTEX}") p .r0'
  ${If} $0 P<> 0
    System::Call 'kernel32::CloseHandle(p r0)'
    MessageBox MB_OK|MB_ICONEXCLAMATION "${APP} is running. Choose Quit in its menu, then try again."
    Abort
  ${EndIf}
!macroend

; Refuse a folder that holds anything unless it is an earlier install of ours: the
; uninstaller removes what it installed, and an install into the owner's own folder
; would mix the two.
Function RefuseForeignFolder
  IfFileExists "$INSTDIR\uninstall.exe" done
  ClearErrors
  FindFirst $0 $1 "$INSTDIR\*.*"
  IfErrors done  ; no such folder yet
  loop:
    StrCmp $1 "" empty
    StrCmp $1 "." next
    StrCmp $1 ".." next
    FindClose $0
    MessageBox MB_OK|MB_ICONEXCLAMATION "The folder $INSTDIR already holds other files and is not a ${APP} installation. Choose a new or empty folder." /SD IDOK
    SetErrorLevel 2
    Quit
  next:
    FindNext $0 $1
    Goto loop
  empty:
  FindClose $0
  done:
FunctionEnd

Var UPDATE

; An update: the app quits once its requests are done, and its files stay locked until
; the process is gone, a moment after its mutex.
Function WaitForTheAppToEnd
  StrCpy $R2 0
  loop:
    System::Call 'kernel32::OpenMutexW(i 0x00100000, i 0, w "${MUTEX}") p .r0'
    ${If} $0 P= 0
      Sleep 2000
      Return
    ${EndIf}
    System::Call 'kernel32::CloseHandle(p r0)'
    IntOp $R2 $R2 + 1
    ${If} $R2 >= 900
      SetErrorLevel 3
      Quit
    ${EndIf}
    Sleep 1000
    Goto loop
FunctionEnd

Function .onInit
  StrCpy $UPDATE 0
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/UPDATE" $R1
  ${IfNot} ${Errors}
    StrCpy $UPDATE 1
    Call WaitForTheAppToEnd
  ${Else}
    !insertmacro RefuseWhileRunning
  ${EndIf}
  Call RefuseForeignFolder
FunctionEnd

Function .onInstSuccess
  ${If} $UPDATE == 1
    Exec '"$INSTDIR\${EXE}"'
  ${EndIf}
FunctionEnd

Function .onInstFailed
  ${If} $UPDATE == 1
  ${AndIf} ${FileExists} "$INSTDIR\${EXE}"
    Exec '"$INSTDIR\${EXE}"'
  ${EndIf}
FunctionEnd

Function un.onInit
  !insertmacro RefuseWhileRunning
FunctionEnd

Section "${APP}" SecApp
  SectionIn RO
  ; An upgrade replaces the program whole: no library of the old version stays behind.
  RMDir /r "$INSTDIR\_internal"
  SetOutPath "$INSTDIR"
  File /r "${STAGE}\*.*"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateDirectory "$SMPROGRAMS"
  CreateShortCut "$SMPROGRAMS\${APP}.lnk" "$INSTDIR\${EXE}"
  WriteRegStr HKCU "${UNINSTKEY}" "DisplayName" "${APP}"
  WriteRegStr HKCU "${UNINSTKEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTKEY}" "Publisher" "GhubAi"
  WriteRegStr HKCU "${UNINSTKEY}" "DisplayIcon" "$INSTDIR\${EXE}"
  WriteRegStr HKCU "${UNINSTKEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTKEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegStr HKCU "${UNINSTKEY}" "InstallLocation" "$INSTDIR"
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKCU "${UNINSTKEY}" "EstimatedSize" $0
  WriteRegDWORD HKCU "${UNINSTKEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTKEY}" "NoRepair" 1
SectionEnd

Section "Start at login" SecLogin
  ; The same value the app's "Start at login" menu item writes.
  WriteRegStr HKCU "${RUNKEY}" "${APP}" '"$INSTDIR\${EXE}"'
SectionEnd

LangString DESC_APP ${LANG_ENGLISH} "The tray application (required)."
LangString DESC_LOGIN ${LANG_ENGLISH} "Start ${APP} when you log in, so your GPU is shared whenever the computer is on."
!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SecApp} $(DESC_APP)
  !insertmacro MUI_DESCRIPTION_TEXT ${SecLogin} $(DESC_LOGIN)
!insertmacro MUI_FUNCTION_DESCRIPTION_END

Section "Uninstall"
  ; /SD IDNO: a silent uninstall (/S) keeps the user's settings instead of waiting for
  ; an answer nobody can give.
  MessageBox MB_YESNO|MB_ICONQUESTION "Also remove your ${APP} settings, logs and the stored token?" /SD IDNO IDNO keep
    ; The app removes the token from Windows Credential Manager itself.
    ExecWait '"$INSTDIR\${CLI}" token clear'
    RMDir /r "$LOCALAPPDATA\GhubAi"
  keep:
  DeleteRegValue HKCU "${RUNKEY}" "${APP}"
  Delete "$SMPROGRAMS\${APP}.lnk"
  ; Only what the installer put here: the folder goes if that leaves it empty.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\${EXE}"
  Delete "$INSTDIR\${CLI}"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINSTKEY}"
SectionEnd
