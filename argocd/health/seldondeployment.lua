-- Argo CD health for machinelearning.seldon.io/v1 SeldonDeployment (Argo CD has none built in).
-- status.state: Available -> Healthy, Failed -> Degraded, anything else (Creating, none yet)
-- -> Progressing. The operator can report Available while a replica is still missing, so an
-- Available deployment whose deploymentStatus shows fewer available than desired replicas is
-- still Progressing.
-- A Healthy message names what serves (each predictor's version and traffic, a shadow as
-- mirrored), so the resource view shows a running canary at its weight. The canary analysis
-- never changes this status: a waiting analysis is the normal state of a canary, and its
-- verdict is shown in the Application's info (argocd/applicationset.yaml), not as health.
local function serving(spec)
  local parts = {}
  if spec == nil or spec.predictors == nil then
    return ""
  end
  for _, p in ipairs(spec.predictors) do
    local version = "?"
    if p.labels ~= nil and p.labels.version ~= nil then
      version = tostring(p.labels.version)
    end
    if p.shadow == true then
      table.insert(parts, tostring(p.name) .. " v" .. version .. " (shadow, answers nobody)")
    else
      table.insert(parts, tostring(p.name) .. " v" .. version .. " " .. tostring(p.traffic or 0) .. "%")
    end
  end
  return table.concat(parts, ", ")
end

local hs = {}
if obj.status == nil or obj.status.state == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Seldon operator to report a state"
  return hs
end
local state = obj.status.state
if state == "Failed" then
  hs.status = "Degraded"
  hs.message = obj.status.description or "SeldonDeployment failed"
  return hs
end
if state == "Available" then
  if obj.status.deploymentStatus ~= nil then
    for name, ds in pairs(obj.status.deploymentStatus) do
      local want = ds.replicas or 0
      local have = ds.availableReplicas or 0
      if have < want then
        hs.status = "Progressing"
        hs.message = name .. ": " .. have .. "/" .. want .. " replicas available"
        return hs
      end
    end
  end
  hs.status = "Healthy"
  hs.message = "All predictors available"
  local what = serving(obj.spec)
  if what ~= "" then
    hs.message = hs.message .. ": " .. what
  end
  return hs
end
hs.status = "Progressing"
hs.message = "SeldonDeployment is " .. tostring(state)
return hs
