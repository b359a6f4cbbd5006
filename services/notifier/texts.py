"""The email's wording in Swedish and English.

Reasons for a failure or a rejection are written here per error code, never
copied from the job's error message: that message is for operators and can
quote the file (a CSV parser's complaint names the offending row).
"""

from __future__ import annotations

from typing import Final

from rosterflow.events import Language, Outcome

SV, EN = Language.SV, Language.EN

SUBJECTS: Final = {
    SV: {
        Outcome.COMPLETED: "Importen är klar",
        Outcome.FAILED: "Importen misslyckades",
        Outcome.CANCELLED: "Importen avbröts",
        Outcome.REJECTED: "Importen avvisades",
    },
    EN: {
        Outcome.COMPLETED: "The import is complete",
        Outcome.FAILED: "The import failed",
        Outcome.CANCELLED: "The import was cancelled",
        Outcome.REJECTED: "The import was rejected",
    },
}

# Appended to the subject when the outcome alone would mislead: a completed
# job that archived nobody, or a cancelled or failed one whose rows were saved.
SUBJECT_DETAILS: Final = {
    SV: {
        "archive_held": "arkiveringen hölls inne",
        "archive_not_approved": "arkiveringen godkändes inte",
        "rows_saved": "raderna hade redan sparats",
    },
    EN: {
        "archive_held": "archiving was held",
        "archive_not_approved": "archiving was not approved",
        "rows_saved": "the rows had already been saved",
    },
}

LABELS: Final = {
    SV: {
        "unit": "Enhet",
        "school_year": "Läsår",
        "file": "Fil",
        "created": "Nya",
        "updated": "Uppdaterade",
        "unchanged": "Oförändrade",
        "reactivated": "Återaktiverade",
        "guardians_created": "Nya vårdnadshavare",
        "guardians_updated": "Uppdaterade vårdnadshavare",
        "guardians_unchanged": "Oförändrade vårdnadshavare",
        "archived": "Arkiverade",
        "skipped": "Överhoppade rader",
        "rows_with_errors": "Rader med fel",
        "duration": "Tid",
        "link": "Visa importen",
        "reason": "Orsak",
        "reasons": "Vanligaste orsakerna",
        "row": "rad",
        "rows": "rader",
    },
    EN: {
        "unit": "Unit",
        "school_year": "School year",
        "file": "File",
        "created": "Created",
        "updated": "Updated",
        "unchanged": "Unchanged",
        "reactivated": "Re-activated",
        "guardians_created": "New guardians",
        "guardians_updated": "Updated guardians",
        "guardians_unchanged": "Unchanged guardians",
        "archived": "Archived",
        "skipped": "Skipped rows",
        "rows_with_errors": "Rows with errors",
        "duration": "Duration",
        "link": "View the import",
        "reason": "Reason",
        "reasons": "Commonest reasons",
        "row": "row",
        "rows": "rows",
    },
}

# What happened, in plain words, for each situation compose() tells apart.
SUMMARIES: Final = {
    SV: {
        "completed": "Alla giltiga rader har sparats i journalen.",
        "archived": "Patienter i enheten som saknades i filen har arkiverats.",
        "none_missing": "Ingen aktiv patient i enheten saknades i filen; ingen har arkiverats.",
        "no_archive_asked": "Arkivering av patienter som saknas i filen var inte vald.",
        "archive_held": "Arkiveringen hölls inne: fler patienter än säkerhetsgränsen tillåter "
        "skulle ha arkiverats. Ingen patient har arkiverats.",
        "archive_not_approved": "Arkiveringen godkändes inte. Ingen patient har arkiverats.",
        "cancelled_after_import": "Importen avbröts efter att de giltiga raderna sparats i "
        "journalen; de finns kvar där. Arkiveringen gjordes inte: ingen patient har arkiverats.",
        "failed_after_import": "Ett fel stoppade importen efter att de giltiga raderna sparats i "
        "journalen; de finns kvar där. Ingen patient har arkiverats.",
        "cancelled": "Importen avbröts innan något sparades.",
        "superseded": "En nyare fil laddades upp för samma enhet och läsår och ersatte den här "
        "importen innan något sparades.",
        "failed": "Ett fel stoppade importen.",
        "rejected": "Importen avvisades innan filen kontrollerades.",
        "nothing": "Ingenting importerades; journalen är oförändrad.",
    },
    EN: {
        "completed": "Every valid row has been saved to the journal.",
        "archived": "Patients of the unit who were missing from the file have been archived.",
        "none_missing": "No active patient of the unit was missing from the file; nobody has "
        "been archived.",
        "no_archive_asked": "Archiving patients missing from the file was not chosen.",
        "archive_held": "Archiving was held: more patients would have been archived than the "
        "safety threshold allows. Nobody has been archived.",
        "archive_not_approved": "Archiving was not approved. Nobody has been archived.",
        "cancelled_after_import": "The import was cancelled after the valid rows had been saved "
        "to the journal; they remain there. Archiving did not happen: nobody has been archived.",
        "failed_after_import": "An error stopped the import after the valid rows had been saved "
        "to the journal; they remain there. Nobody has been archived.",
        "cancelled": "The import was cancelled before anything was saved.",
        "superseded": "A newer file was uploaded for the same unit and school year and replaced "
        "this import before anything was saved.",
        "failed": "An error stopped the import.",
        "rejected": "The import was rejected before the file was checked.",
        "nothing": "Nothing was imported; the journal is unchanged.",
    },
}

ERRORS: Final = {
    SV: {
        "file_empty": "Filen är tom.",
        "file_not_text": "Filen är inte en textfil (CSV).",
        "file_no_header": "Filen saknar en rubrikrad med kända kolumnnamn.",
        "file_repeated_column": "En kolumn förekommer mer än en gång i rubrikraden. Välj på "
        "importens sida vilken av dem som ska läsas, så kontrolleras filen igen.",
        "file_missing_column": "Obligatoriska kolumner saknas: rubrikraden måste ha personnummer, "
        "förnamn och efternamn.",
        "file_unreadable": "Filen kunde inte läsas som CSV. Spara den igen som UTF-8- eller "
        "Windows-1252-CSV.",
        "file_too_many_rows": "Filen har fler rader än vad som tillåts.",
        "file_missing": "Den uppladdade filen finns inte längre kvar.",
        "file_field_too_long": "En rad i filen har ett fält som är längre än någon cell i en "
        "elevlista, ofta ett citattecken som inte avslutas.",
        "file_sheet_too_large": "Arbetsbokens första blad är större än en import läser; ta bort "
        "tomma rader och kolumner efter elevlistan, eller spara den som CSV.",
        "file_org_not_mapped": "OneRoster-filen har flera organisationer: välj vilken som är "
        "enheten, och kontrollera filen igen utan att ladda upp den.",
        "unit_not_found": "Enheten finns inte i organisationen.",
        "option_not_allowed": "Ett valt alternativ är inte tillåtet för enheten.",
        "format_not_supported": "Filformatet stöds inte ännu.",
        "report_missing": "Kontrollrapporten för importen saknas.",
        "unprocessable_event": "Ett internt fel stoppade importen; driften har underlaget.",
        "stage_attempts_exhausted": "Importen avbröts: tjänsten som arbetade med filen stannade "
        "varje gång den försökte (den kraschade, fick slut på minne eller tog för lång tid). "
        "Filen kan vara skadad eller ovanligt uppbyggd: kontrollera den, eller spara den igen "
        "som CSV, och ladda upp den igen. Kontakta supporten om det händer igen.",
        "event_too_large": "Importen avbröts: uppgifterna om filen blev för stora för att skickas "
        "vidare. Kontrollera rubrikraden och ladda upp filen igen.",
        "file_outside_organisation": "Filen hör inte till organisationen och importerades inte.",
        "file_size_mismatch": "Den lagrade filen har inte den storlek som angavs; den kan ha "
        "ändrats eller skadats. Ladda upp den igen.",
        "file_checksum_mismatch": "Den lagrade filen stämmer inte med den som laddades upp; den "
        "kan ha ändrats eller skadats. Ladda upp den igen.",
        "event_id_reused": "Begäran hade samma id som en tidigare begäran för en annan import "
        "och avvisades. Ladda upp filen igen.",
        "invalid_event": "Begäran om importen var ofullständig eller felaktig och avvisades. "
        "Ladda upp filen igen.",
    },
    EN: {
        "file_empty": "The file is empty.",
        "file_not_text": "The file is not a text (CSV) file.",
        "file_no_header": "The file has no header row with known column names.",
        "file_repeated_column": "A column appears more than once in the header row. Choose on "
        "the import's page which of them to read, and the file is checked again.",
        "file_missing_column": "Required columns are missing: the header row must name the "
        "identity number, given name and family name.",
        "file_unreadable": "The file could not be read as CSV. Save it again as UTF-8 or "
        "Windows-1252 CSV.",
        "file_too_many_rows": "The file has more rows than allowed.",
        "file_missing": "The uploaded file is no longer there.",
        "file_field_too_long": "A line of the file has a field longer than any roster cell, "
        "often a quote that is never closed.",
        "file_sheet_too_large": "The workbook's first sheet is larger than an import reads; "
        "delete the empty rows and columns after the roster, or save it as CSV.",
        "file_org_not_mapped": "The OneRoster file has several orgs: choose which one is the "
        "unit, and check the file again without uploading it.",
        "unit_not_found": "The unit does not exist in this organisation.",
        "option_not_allowed": "An option chosen is not allowed for this unit.",
        "format_not_supported": "The file format is not supported yet.",
        "report_missing": "The import's check report is missing.",
        "unprocessable_event": "An internal error stopped the import; the operators have the "
        "details.",
        "stage_attempts_exhausted": "The import was stopped: the service working on the file "
        "stopped every time it tried (it crashed, ran out of memory or took too long). The file "
        "may be damaged or unusually built: check it, or save it again as CSV, and upload it "
        "again. Contact support if it happens again.",
        "event_too_large": "The import was stopped: what the check found about the file was "
        "too large to pass on. Check the header row and upload the file again.",
        "file_outside_organisation": "The file does not belong to the organisation and was not "
        "imported.",
        "file_size_mismatch": "The stored file does not have the size given for it; it may have "
        "been changed or damaged. Upload it again.",
        "file_checksum_mismatch": "The stored file does not match the one uploaded; it may have "
        "been changed or damaged. Upload it again.",
        "event_id_reused": "The request had the same id as an earlier request for another import "
        "and was refused. Upload the file again.",
        "invalid_event": "The request for the import was incomplete or malformed and was "
        "refused. Upload the file again.",
    },
}

UNKNOWN_ERROR: Final = {
    SV: "Ett fel stoppade importen (felkod {code}).",
    EN: "An error stopped the import (error code {code}).",
}
